-- task_rescue_expired: tasks whose worker stopped renewing their lease (crashed, killed, cut
-- off) run again; the attempt that was lost counts. A task with no attempts left fails for good.
-- $1 limit int. Locks: the rescued rows (SKIP LOCKED: every worker may run the rescuer).
-- Index: tasks_leased_idx (the leased set is small: at most the workers' total concurrency).
-- Time comes from the database, so clock skew between hosts cannot rescue a live task.
with expired as materialized (
  select id
    from :SCHEMA.tasks
   where lease_until is not null and lease_until < now() and state = 'running'
   limit $1
     for update skip locked
), rescued as (
  update :SCHEMA.tasks t
     set state = case when t.attempts >= t.max_attempts then 'failed' else 'ready' end:::SCHEMA.task_state,
         finished_at = case when t.attempts >= t.max_attempts then now() end,
         lease_until = null,
         error = jsonb_build_object(
           'name', 'LeaseExpired',
           'message', format('worker %s stopped renewing the lease of attempt %s (crashed or cut off)', t.worker_id, t.attempts))
    from expired e
   where t.id = e.id
  returning t.id, t.queue, t.state
), woken as (
  select count(pg_notify(':SCHEMA.ready', q.queue)) as n
    from (select distinct queue from rescued where state = 'ready') q
)
select coalesce(array_agg(id), '{}') as ids,
       coalesce(array_agg(id) filter (where state = 'failed'), '{}') as failed,
       :SCHEMA.notify_waiters(array_agg(id) filter (where state = 'failed')) as notified,
       (select n from woken) as queues_woken
  from rescued
