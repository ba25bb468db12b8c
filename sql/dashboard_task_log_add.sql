-- dashboard_task_log_add: store a batch of task log lines (taskLogStream). Parallel arrays, one
-- element per line: $1 task_ids bigint[], $2 attempts int[], $3 ats timestamptz[], $4 levels
-- int[], $5 messages text[], $6 fields jsonb[]. Locks: none (an insert into an unlogged table).
insert into :SCHEMA.task_logs (task_id, attempt, at, level, message, fields)
select u.task_id, u.attempt, u.at, u.level, u.message, u.fields
  from unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::int[], $5::text[], $6::jsonb[])
         as u(task_id, attempt, at, level, message, fields)
