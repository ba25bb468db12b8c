-- task_next_due: when the next scheduled or backing-off task becomes due, so a worker can set a
-- timer for it instead of polling. Index: tasks_due_idx (a one-row index scan).
select min(run_at) as next_at, now() as now
  from :SCHEMA.tasks
 where state in ('pending', 'retrying')
