-- dashboard_task_logs: a task's log lines (kept by taskLogStream), oldest first, at most $2.
-- $1 task_id bigint, $2 limit int. Locks: none. Index: task_logs_task_idx (task_id, at).
select attempt, at, level, message, fields
  from :SCHEMA.task_logs
 where task_id = $1::bigint
 order by at, attempt
 limit $2::int
