-- task_release_many: hand tasks back at shutdown. Claimed-but-not-started tasks ($3 true) get
-- their attempt back; interrupted ones ($3 false) keep it. They are ready again at once.
-- $1 ids bigint[], $2 worker_id uuid, $3 uncharge boolean[]
-- Expects running on this worker. Locks: the rows. Index: tasks_pkey.
with released as (
  update :SCHEMA.tasks t
     set state = 'ready',
         attempts = case when r.uncharge then t.attempts - 1 else t.attempts end,
         lease_until = null,
         started_at = case when r.uncharge then null else t.started_at end
    from unnest($1::bigint[], $3::boolean[]) as r(id, uncharge)
   where t.id = r.id and t.state = 'running' and t.worker_id = $2
  returning t.id, t.queue
), woken as (
  select count(pg_notify(':SCHEMA.ready', q.queue)) as n from (select distinct queue from released) q
)
select coalesce(array_agg(id), '{}') as ids, (select n from woken) as queues_woken from released
