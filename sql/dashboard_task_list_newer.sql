-- dashboard_task_list_newer: the task list's previous page: the rows newer than the first id
-- shown (`id > $1`), oldest first (the dashboard reverses them). Parameters and filters as
-- dashboard_task_list, with $1 after_id bigint.
-- Locks: none. Index: tasks_pkey, scanned forward from $1.
select id, name, queue, state, priority, attempts, max_attempts, created_at, run_at, started_at,
       finished_at, left(args::text, 160) as args_preview, error->>'name' as error_name,
       left(error->>'message', 160) as error_message, group_id, chord_id, parent_id
  from :SCHEMA.tasks
 where id > coalesce($1::bigint, 0)
   and ($2::text is null or queue = $2::text)
   and ($3::text is null or state = $3::text:::SCHEMA.task_state)
   and ($4::text is null or starts_with(name, $4::text))
   and created_at >= coalesce($5::timestamptz, '-infinity')
   and created_at < coalesce($6::timestamptz, 'infinity')
 order by id
 limit $7::int
