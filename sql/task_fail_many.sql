-- task_fail_many: record failed attempts. A task with attempts left and a retry delay waits in
-- 'retrying' until run_at (then task_stage_due makes it ready); otherwise it fails for good.
-- $1 ids bigint[], $2 attempts int[], $3 errors jsonb[], $4 retry_delays_ms int[] (null: do not
-- retry), $5 worker_id uuid
-- Expects running on this worker at this attempt (STYLE.md 4). Locks: the rows. Index: tasks_pkey.
with failed as (
  update :SCHEMA.tasks t
     set state = case when r.delay_ms is not null and t.attempts < t.max_attempts
                      then 'retrying' else 'failed' end:::SCHEMA.task_state,
         run_at = case when r.delay_ms is not null and t.attempts < t.max_attempts
                       then now() + r.delay_ms * interval '1 millisecond' else t.run_at end,
         finished_at = case when r.delay_ms is not null and t.attempts < t.max_attempts
                            then null else now() end,
         error = r.error,
         lease_until = null
    from unnest($1::bigint[], $2::int[], $3::jsonb[], $4::int[]) as r(id, attempt, error, delay_ms)
   where t.id = r.id and t.state = 'running' and t.worker_id = $5 and t.attempts = r.attempt
  returning t.id, t.state, t.run_at
)
select coalesce(array_agg(id), '{}') as ids,
       coalesce(array_agg(id) filter (where state = 'failed'), '{}') as failed,
       min(run_at) filter (where state = 'retrying') as next_retry_at,
       :SCHEMA.notify_waiters(array_agg(id) filter (where state = 'failed')) as notified
  from failed
