-- dashboard_task_attempts: the attempts of task $1 that ended, oldest first: those that did not
-- succeed from jobs.task_attempts (written by the tasks_record_attempts trigger), and the one
-- that succeeded from the task's own row; with the name of each attempt's worker while it is
-- registered. $1 id bigint. Locks: none. Index: task_attempts_task_idx, tasks_pkey, workers_pkey.
select a.attempt, a.worker_id, w.name as worker_name, a.started_at, a.ended_at, a.outcome, a.error
  from (select attempt, worker_id, started_at, ended_at, outcome, error
          from :SCHEMA.task_attempts where task_id = $1::bigint
        union all
        select attempts, worker_id, started_at, finished_at, state, null::jsonb
          from :SCHEMA.tasks where id = $1::bigint and state = 'succeeded') a
  left join :SCHEMA.workers w on w.id = a.worker_id
 order by a.ended_at, a.attempt
 limit 1000
