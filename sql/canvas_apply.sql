-- canvas_apply: enqueue a canvas (group / chain / chord, nested) through the SQL API, which gives
-- every task its id up front and returns the canvas with ids (the client builds result handles
-- from it). $1 canvas jsonb, $2 parent_id bigint (the task enqueuing it, if any), $3 headers jsonb.
select :SCHEMA.apply_canvas($1::jsonb, $2::bigint, $3::jsonb) as canvas
