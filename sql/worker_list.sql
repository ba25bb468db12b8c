-- worker_list: registered workers, their last heartbeat, how many tasks each runs now, and the
-- task names their app registered. A worker whose heartbeat_age_s exceeds its lease is dead or
-- cut off: its tasks are rescued once their leases lapse.
-- Index: tasks_leased_idx (worker_id) where lease_until is not null (a running task holds a lease).
select w.id, w.name, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       extract(epoch from now() - w.heartbeat_at)::float8 as heartbeat_age_s,
       (select count(*)::int from :SCHEMA.tasks t where t.worker_id = w.id and t.lease_until is not null) as running,
       coalesce(array(select jsonb_array_elements_text(
                  case when jsonb_typeof(w.meta->'tasks') = 'array' then w.meta->'tasks' else '[]' end)),
                '{}') as tasks
  from :SCHEMA.workers w
 order by w.started_at, w.id
