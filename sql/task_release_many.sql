-- task_release_many: hand tasks back at shutdown, ready again at once, their attempt not counted:
-- claimed-but-not-started ones never ran, and interrupted ones did not fail — this worker stopped
-- them (a crash, found by the rescuer, does count the attempt).
-- $1 ids bigint[], $2 worker_id uuid
-- Expects running on this worker. Locks: the rows. Index: tasks_pkey.
with released as (
  update :SCHEMA.tasks t
     set state = 'ready', attempts = t.attempts - 1, lease_until = null, started_at = null
   where t.id = any($1::bigint[]) and t.state = 'running' and t.worker_id = $2
  returning t.id, t.queue
), woken as (
  select count(pg_notify(':SCHEMA.ready', q.queue)) as n from (select distinct queue from released) q
)
select coalesce(array_agg(id), '{}') as ids, (select n from woken) as queues_woken from released
