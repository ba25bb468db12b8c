-- task_enqueue_many: the TypeScript client's enqueue, through the same SQL function psql users
-- call (STYLE.md 5). Parallel arrays, one element per task; returns ids in input order. A
-- countdown travels as a delay ($14, ms), made run_at on the database's clock.
-- Locks: inserts only (and the dedup key's unique index where a key is given).
select id from :SCHEMA.enqueue_many(
  $1::text[], $2::jsonb[], $3::text[], $4::int[], $5::timestamptz[], $6::int[], $7::text[],
  $8::jsonb[], $9::bigint[], $10::uuid[], $11::uuid[], $12::int[], $13::jsonb[], $14::bigint[])
