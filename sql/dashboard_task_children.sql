-- dashboard_task_children: the tasks a task enqueued (subtasks, the next step of its chain, the
-- callback it triggered), for the task page. $1 parent_id bigint, $2 limit int.
-- Locks: none. Index: tasks_parent_idx (parent_id) where parent_id is not null.
select id, name, queue, state, created_at, finished_at
  from :SCHEMA.tasks
 where parent_id = $1::bigint
 order by id
 limit $2::int
