-- dashboard_task_get_many: name and state of the given tasks (the steps after a task in its
-- chain, which exist only once the chain reaches them). $1 ids bigint[]. Locks: none.
-- Index: tasks_pkey.
select id, name, state, finished_at
  from :SCHEMA.tasks
 where id = any($1::bigint[])
