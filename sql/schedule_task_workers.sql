-- schedule_task_workers: the live workers (heartbeat within $2 seconds), the queues each serves
-- and whether its app registers task $1 (jobs.workers.meta->'tasks', written at worker start).
-- `pgjobs schedule add` refuses a task no live worker registers. Locks: none.
select w.queues, coalesce(w.meta->'tasks' ? $1::text, false) as registers
  from :SCHEMA.workers w
 where w.heartbeat_at > now() - $2::float8 * interval '1 second'
