-- queue_status: per queue, the counts an operator asks for first, and the age of the oldest
-- ready task. Scans the tasks table once (a seq scan on a big table: for `pgjobs status` and
-- metrics, cached by callers; not a hot path).
select queue,
       count(*) filter (where state = 'ready')::int as ready,
       count(*) filter (where state in ('pending', 'retrying'))::int as scheduled,
       count(*) filter (where state = 'running')::int as running,
       count(*) filter (where state = 'failed')::int as failed,
       count(*) filter (where state = 'succeeded')::int as succeeded,
       count(*) filter (where state = 'cancelled')::int as cancelled,
       extract(epoch from now() - min(run_at) filter (where state = 'ready'))::float8 as oldest_ready_s
  from :SCHEMA.tasks
 group by queue
 order by queue
