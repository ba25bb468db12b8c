-- dashboard_group_members: the members of a group (or of a chord's header: its group_id), in
-- member order. $1 group_id uuid, $2 limit int. Locks: none. Index: tasks_group_idx (group_id, id).
select id, name, queue, state, attempts, max_attempts, created_at, started_at, finished_at,
       (workflow->>'chord_index')::int as chord_index, error->>'name' as error_name,
       left(error->>'message', 160) as error_message
  from :SCHEMA.tasks
 where group_id = $1::uuid
 order by id
 limit $2::int
