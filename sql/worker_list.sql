-- worker_list: live workers, their last heartbeat and how many tasks each runs now.
-- Index: tasks_running_idx (worker_id) where state = 'running'.
select w.id, w.name, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       extract(epoch from now() - w.heartbeat_at)::float8 as heartbeat_age_s,
       (select count(*)::int from :SCHEMA.tasks t where t.worker_id = w.id and t.state = 'running') as running
  from :SCHEMA.workers w
 order by w.started_at
