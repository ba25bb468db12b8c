-- task_show: one task, every column, and the name of the worker that holds (or last held) it
-- while that worker is registered. $1 id bigint. Index: tasks_pkey, workers_pkey.
select t.id, t.name, t.queue, t.state, t.args, t.result, t.error, t.priority, t.run_at, t.attempts,
       t.max_attempts, t.created_at, t.started_at, t.finished_at, t.parent_id, t.group_id, t.chord_id,
       t.headers, t.progress, t.key, t.worker_id, t.lease_until, t.timeout_ms, t.workflow,
       w.name as worker_name
  from :SCHEMA.tasks t
  left join :SCHEMA.workers w on w.id = t.worker_id
 where t.id = $1::bigint
