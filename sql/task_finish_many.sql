-- task_finish_many: record the success of a batch of attempts, and wake whoever waits on them.
-- $1 ids bigint[], $2 attempts int[], $3 results jsonb[], $4 worker_id uuid
-- Expects each task still running on this worker at this attempt (STYLE.md 4): a late
-- acknowledgement for a task that was rescued, cancelled or re-run changes nothing, and the
-- ids that did change are returned so the caller can log the rest.
-- Locks: the finished rows. Index: tasks_pkey. Notifies <schema>.done only for ids listed in
-- result_waiters (see notify_waiters), so a queue nobody waits on sends no NOTIFY.
with done as (
  update :SCHEMA.tasks t
     set state = 'succeeded', result = r.result, error = null, finished_at = now(), lease_until = null
    from unnest($1::bigint[], $2::int[], $3::jsonb[]) as r(id, attempt, result)
   where t.id = r.id and t.state = 'running' and t.worker_id = $4 and t.attempts = r.attempt
  returning t.id
)
select coalesce(array_agg(id), '{}') as ids, :SCHEMA.notify_waiters(array_agg(id)) as notified
  from done
