-- schedule_advance: record that a schedule fired up to $3 and is next due at $2.
-- $1 name text, $2 next_run_at timestamptz, $3 last_run_at timestamptz (null: unchanged)
update :SCHEMA.schedules
   set next_run_at = $2, last_run_at = coalesce($3, last_run_at), updated_at = now()
 where name = $1
