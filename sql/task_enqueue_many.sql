-- task_enqueue_many: the TypeScript client's enqueue, through the same SQL function psql users
-- call (STYLE.md 5). Parallel arrays, one element per task; returns ids in input order. A
-- countdown travels as a delay ($14, ms), made run_at on the database's clock.
-- The JSON columns travel as one JSON array each ($2 args, $8 headers, $13 workflows; a JSON
-- null element is SQL NULL, the function's default): a jsonb[] parameter of 1,000 args took
-- 5.5 ms (the client escapes every element into an array literal, the server's array parser
-- reads it back), one document split by jsonb_array_elements 1.5 ms (docs/architecture.md,
-- "Choices measured").
-- The ids come back as one comma-separated text, in input order: 1,000 rows of one id took
-- 1.5 ms to send and parse, one text 0.8 ms.
-- Locks: inserts only (and the dedup key's unique index where a key is given).
select string_agg(r.id::text, ',' order by r.o) as ids
  from :SCHEMA.enqueue_many(
  $1::text[],
  (select array_agg(e.x order by e.o) from jsonb_array_elements($2::jsonb) with ordinality as e(x, o)),
  $3::text[], $4::int[], $5::timestamptz[], $6::int[], $7::text[],
  (select array_agg(nullif(e.x, 'null') order by e.o) from jsonb_array_elements($8::jsonb) with ordinality as e(x, o)),
  $9::bigint[], $10::uuid[], $11::uuid[], $12::int[],
  (select array_agg(nullif(e.x, 'null') order by e.o) from jsonb_array_elements($13::jsonb) with ordinality as e(x, o)),
  $14::bigint[]) with ordinality as r(id, o)
