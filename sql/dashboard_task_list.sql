-- dashboard_task_list: one page of the task list, newest first, with keyset pagination: the
-- next page is the rows older than the last id shown (`id < $1`), never an OFFSET, so page 1000
-- costs what page 1 costs. Every filter is optional (null: any).
-- $1 before_id bigint (null: from the newest), $2 queue text, $3 state text, $4 name prefix
-- text, $5 created from timestamptz, $6 created before timestamptz, $7 limit int.
-- Locks: none. Index: tasks_pkey, scanned backward from $1 (coalesce keeps `id < ...` an index
-- condition in the generic plan of this prepared statement, where `$1 is null or id < $1`
-- would not be). A filter that matches few rows reads more of the index to fill a page: see
-- test/fixtures/issue9-bench.ts for the figures with 1,000,000 tasks.
select id, name, queue, state, priority, attempts, max_attempts, created_at, run_at, started_at,
       finished_at, left(args::text, 160) as args_preview, error->>'name' as error_name,
       left(error->>'message', 160) as error_message, group_id, chord_id, parent_id
  from :SCHEMA.tasks
 where id < coalesce($1::bigint, 9223372036854775807)
   and ($2::text is null or queue = $2::text)
   and ($3::text is null or state = $3::text:::SCHEMA.task_state)
   and ($4::text is null or starts_with(name, $4::text))
   and created_at >= coalesce($5::timestamptz, '-infinity')
   and created_at < coalesce($6::timestamptz, 'infinity')
 order by id desc
 limit $7::int
