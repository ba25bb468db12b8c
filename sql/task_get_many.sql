-- task_get_many: read the state of tasks by id (AsyncResult). $1 ids bigint[]. Index: tasks_pkey.
select id, name, state, result, error, progress, attempts, max_attempts, queue
  from :SCHEMA.tasks
 where id = any($1::bigint[])
