-- dashboard_worker_tasks: what each worker runs now (the tasks holding a lease). $1 limit int.
-- Locks: none. Index: tasks_leased_idx (worker_id) where lease_until is not null: the running
-- set, at most the workers' total concurrency.
select worker_id, id, name, queue, attempts, started_at, lease_until
  from :SCHEMA.tasks
 where lease_until is not null
 order by worker_id, started_at, id
 limit $1::int
