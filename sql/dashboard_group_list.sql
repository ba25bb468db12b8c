-- dashboard_group_list: the newest groups (chord headers included) among the newest $2 tasks,
-- with their members' states. A group has no row of its own: it is the tasks that share a
-- group_id. $1 limit int, $2 how many of the newest tasks to look through.
-- Locks: none. Index: tasks_pkey (backward, at most $2 rows), then tasks_group_idx per group.
with recent as materialized (
  select group_id, max(id) as newest
    from (select group_id, id from :SCHEMA.tasks
           where group_id is not null and id > (select coalesce(max(id), 0) from :SCHEMA.tasks) - $2::bigint) t
   group by group_id
   order by newest desc
   limit $1::int
)
select r.group_id, m.total, m.succeeded, m.failed, m.running, m.cancelled, m.first_id, m.created_at,
       (select c.id from :SCHEMA.chords c where c.group_id = r.group_id limit 1) as chord_id
  from recent r
  cross join lateral (
    select count(*)::int as total,
           count(*) filter (where t.state = 'succeeded')::int as succeeded,
           count(*) filter (where t.state = 'failed')::int as failed,
           count(*) filter (where t.state = 'running')::int as running,
           count(*) filter (where t.state = 'cancelled')::int as cancelled,
           min(t.id) as first_id, min(t.created_at) as created_at
      from :SCHEMA.tasks t where t.group_id = r.group_id
  ) m
 order by r.newest desc
