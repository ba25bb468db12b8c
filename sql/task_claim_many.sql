-- task_claim_many: claim up to $2 ready tasks of one queue for worker $3, in claim order
-- (priority desc, run_at, id), stamping worker, lease and attempt in the same statement.
-- $1 queue text, $2 limit int, $3 worker_id uuid, $4 lease_ms int
-- Locks: the claimed rows (FOR UPDATE SKIP LOCKED: concurrent claimers skip each other's rows,
-- never wait, never receive the same task). Index: tasks_ready_idx (queue, priority desc, run_at, id)
-- where state = 'ready'. The CTE is MATERIALIZED so the LIMIT is applied exactly once: an
-- `id in (subquery limit n)` may be re-run by the planner and over-claim.
-- Durability: the claim commits without waiting for its WAL flush (synchronous_commit off for
-- this transaction only). Losing a claim in a server crash only makes the task ready again — it
-- runs again, which at-least-once allows, and the worker's late acknowledgement changes nothing.
-- Enqueues and acknowledgements stay synchronous. Measured: a claim of 10 went from ~1.7-3.8 ms
-- (one fsync each) to well under a millisecond.
with async_commit as materialized (
  select set_config('synchronous_commit', 'off', true)
), candidates as materialized (
  select id
    from :SCHEMA.tasks
   where state = 'ready' and queue = $1
     -- A paused queue (jobs.pause_queue) is not claimed from: one probe of queues' primary key
     -- per claim (an InitPlan), measured 28 -> 38 us for the candidate select.
     and not exists (select 1 from :SCHEMA.queues q where q.name = $1 and q.paused)
   order by priority desc, run_at, id
   limit $2
     for update skip locked
), claimed as (
  update :SCHEMA.tasks t
     set state = 'running',
         worker_id = $3,
         attempts = t.attempts + 1,
         started_at = now(),
         lease_until = now() + $4 * interval '1 millisecond'
    from candidates c, async_commit
   where t.id = c.id
  returning t.id, t.name, t.queue, t.args, t.attempts, t.max_attempts, t.timeout_ms, t.headers,
            t.run_at, t.started_at, t.priority
)
-- UPDATE ... RETURNING comes back in join order, not claim order: the worker starts the rows
-- in the order given here. Only what the worker reads, the times as whole epoch milliseconds (a
-- float to parse, not a timestamp; the worker makes Dates of them only for hooks): the workflow
-- columns are the database's triggers' business. With 15 columns and two timestamps parsed per
-- row, a drain of 20,000 no-op tasks at concurrency 50 took 418-438 ms of worker CPU; 377-412 so.
select id, name, queue, args, attempts, max_attempts, timeout_ms, headers,
       floor(extract(epoch from run_at) * 1000)::float8 as run_at_ms,
       floor(extract(epoch from started_at) * 1000)::float8 as started_at_ms
  from claimed
 order by priority desc, run_at, id
