-- task_enqueue_cli: `pgjobs enqueue NAME`: one task through the SQL write API (STYLE.md 5), the
-- countdown counted on the database's clock (STYLE.md 10), not the operator's.
-- $1 name text, $2 args jsonb, $3 queue text, $4 priority int, $5 countdown_ms float8 (null: now),
-- $6 max_attempts int, $7 key text (null: none). Returns the id (for a dedup key an unfinished
-- task holds, that task's id). Locks: the insert only.
select e.id
  from :SCHEMA.enqueue_many(array[$1::text], array[$2::jsonb], array[$3::text], array[$4::int],
                            array[now() + $5::float8 * interval '1 millisecond'], array[$6::int],
                            array[$7::text]) as e(id)
