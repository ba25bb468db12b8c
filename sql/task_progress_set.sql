-- task_progress_set: store a running task's progress (visible in SQL and to AsyncResult).
-- $1 id bigint, $2 attempt int, $3 progress jsonb, $4 worker_id uuid
-- progress is in no index: a HOT update. Index: tasks_pkey.
update :SCHEMA.tasks
   set progress = $3
 where id = $1 and attempts = $2 and state = 'running' and worker_id = $4
returning id
