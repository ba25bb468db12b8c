-- task_renew_leases: the worker's heartbeat. Extends the lease of every task it still holds
-- and returns their ids; a task missing from the answer was cancelled or rescued, and the worker
-- aborts it. It also keeps the worker's hand-off offer (if any) valid for $4 ms more.
-- $1 worker_id uuid, $2 ids bigint[], $3 lease_ms int, $4 offer_ttl_ms int
-- Locks: the worker's row, and those of its running tasks that nobody else has locked (SKIP
-- LOCKED). A renewal never waits on a task row, so it cannot deadlock with the worker's own
-- acknowledgements, which lock the same rows in whatever order their plan visits them (a hash
-- join visits heap order: a 4-worker race with heartbeats every few ms deadlocked within
-- seconds). A row it skips is being finished, cancelled or rescued right now; it still counts
-- as held (read without a lock), and the next heartbeat renews it if it is still running.
-- Index: tasks_pkey. (lease_until is in the predicate of tasks_leased_idx, so a renewal is not
-- HOT; renewals are rare: once per lease/3.)
with w as (
  update :SCHEMA.workers set heartbeat_at = now() where id = $1 returning id
), offer as (
  update :SCHEMA.worker_offers set until = now() + $4 * interval '1 millisecond' where worker_id = $1
), held as (
  select t.id
    from :SCHEMA.tasks t
   where t.id = any($2::bigint[]) and t.state = 'running' and t.worker_id = $1
), lockable as materialized (
  select t.id
    from :SCHEMA.tasks t
   where t.id = any($2::bigint[]) and t.state = 'running' and t.worker_id = $1
     for update skip locked
), renewed as (
  update :SCHEMA.tasks t
     set lease_until = now() + $3 * interval '1 millisecond'
    from lockable l
   where t.id = l.id
  returning t.id
)
-- (renewed and offer run whether or not they are read: data-modifying CTEs always do.)
select coalesce((select array_agg(id) from held), '{}') as held,
       exists (select 1 from w) as registered
