-- dashboard_queue_overview: the overview page's table. Per queue (every queue with tasks ready,
-- scheduled, running or failed, and every queue an operator paused or resumed): tasks ready,
-- scheduled (pending or retrying), running and failed, the age of the oldest ready task, and
-- whether the queue is paused (jobs.queues). The same counts as `select queue, state, count(*)
-- from jobs.tasks group by 1, 2`; succeeded and cancelled tasks, the bulk of the table, are not
-- counted (the overview shows the last hour's instead: dashboard_queue_throughput).
-- No parameters. Locks: none. Each count reads only its state's partial index: tasks_ready_idx
-- (an index-only scan, min(run_at) included), tasks_due_idx, tasks_leased_idx and
-- tasks_failed_idx, so the cost follows the backlog, not the table (measured with 1,000,000
-- tasks in test/fixtures/issue9-bench.ts: a sequential scan of them all took ~320 ms).
with ready as (
  select queue, count(*)::int as n, extract(epoch from now() - min(run_at))::float8 as oldest_s
    from :SCHEMA.tasks where state = 'ready' group by queue
), scheduled as (
  select queue, count(*)::int as n from :SCHEMA.tasks where state in ('pending', 'retrying') group by queue
), running as (
  select queue, count(*)::int as n from :SCHEMA.tasks where lease_until is not null and state = 'running' group by queue
), failed as (
  select queue, count(*)::int as n from :SCHEMA.tasks where state = 'failed' group by queue
), names as (
  select queue from ready union select queue from scheduled union select queue from running
  union select queue from failed union select name from :SCHEMA.queues
)
select n.queue,
       coalesce(r.n, 0) as ready,
       coalesce(s.n, 0) as scheduled,
       coalesce(u.n, 0) as running,
       coalesce(f.n, 0) as failed,
       r.oldest_s as oldest_ready_s,
       coalesce(q.paused, false) as paused,
       q.changed_at as paused_changed_at,
       q.changed_by as paused_changed_by
  from names n
  left join ready r on r.queue = n.queue
  left join scheduled s on s.queue = n.queue
  left join running u on u.queue = n.queue
  left join failed f on f.queue = n.queue
  left join :SCHEMA.queues q on q.name = n.queue
 order by n.queue
