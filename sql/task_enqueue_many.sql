-- task_enqueue_many: the TypeScript client's enqueue of a batch (or of anything inside a caller's
-- transaction), through enqueue_many_json (migration 000017): every column one JSON array, an
-- element per task in input order ($1 names, $2 args, $3 queues, $4 priorities, $5 run_ats,
-- $6 max_attempts, $7 keys, $8 headers, $9 parent_ids, $10 group_ids, $11 chord_ids,
-- $12 timeouts_ms, $13 workflows, $14 delays_ms: a countdown, made run_at on the database's
-- clock). A null array, or a JSON null in one, is the column's default.
-- JSON rather than Postgres arrays: node-postgres escapes every element of an array parameter
-- into an array literal that the server parses back (a jsonb[] of 1,000 args took 5.5 ms, a
-- text[] of 1,000 names 0.3 ms of client CPU); JSON.stringify is native, and the function reads
-- each array by position (docs/architecture.md, "Choices measured").
-- The ids come back as one comma-separated text, in input order: 1,000 rows of one id took
-- 1.5 ms to send and parse, one text 0.8 ms.
-- Locks: inserts only (and the dedup key's unique index where a key is given).
select :SCHEMA.enqueue_many_json($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb,
         $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb, $13::jsonb,
         $14::jsonb) as ids
