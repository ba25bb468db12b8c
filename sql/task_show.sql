-- task_show: one task, every column. $1 id bigint. Index: tasks_pkey.
select id, name, queue, state, args, result, error, priority, run_at, attempts, max_attempts,
       created_at, started_at, finished_at, parent_id, group_id, chord_id, headers, progress, key,
       worker_id, lease_until, timeout_ms, workflow
  from :SCHEMA.tasks
 where id = $1
