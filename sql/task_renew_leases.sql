-- task_renew_leases: the worker's heartbeat. Extends the lease of every task it still holds
-- and returns their ids; a task missing from the answer was cancelled or rescued, and the worker
-- aborts it. $1 worker_id uuid, $2 ids bigint[], $3 lease_ms int
-- Locks: the worker's row and its running tasks. Index: tasks_pkey. (lease_until is in the
-- predicate of tasks_leased_idx, so a renewal is not HOT; renewals are rare: once per lease/3
-- per running task, only for tasks that run that long.)
with w as (
  update :SCHEMA.workers set heartbeat_at = now() where id = $1 returning id
), held as (
  update :SCHEMA.tasks t
     set lease_until = now() + $3 * interval '1 millisecond'
   where t.id = any($2::bigint[]) and t.state = 'running' and t.worker_id = $1
  returning t.id
)
select coalesce((select array_agg(id) from held), '{}') as held,
       exists (select 1 from w) as registered
