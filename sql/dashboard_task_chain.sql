-- dashboard_task_chain: the steps of a chain before task $1, nearest last. A chain hands over by
-- enqueuing its next step with the finishing step as parent, and the step's `workflow` names the
-- next step's id (given out up front by canvas_assign_ids), so a parent is the previous step of
-- the same chain exactly when its workflow->'next' starts with this task.
-- $1 id bigint. Locks: none. Index: tasks_pkey, one probe per step (at most 1,000 steps).
with recursive up as (
  select t.id, t.parent_id, 0 as depth
    from :SCHEMA.tasks t
   where t.id = $1::bigint
  union all
  select p.id, p.parent_id, up.depth + 1
    from up
    join :SCHEMA.tasks p on p.id = up.parent_id
   where up.depth < 1000
     and up.id = case p.workflow->'next'->>'t'
                   when 'sig' then (p.workflow->'next'->>'id')::bigint
                   when 'chain' then (p.workflow->'next'->'steps'->0->>'id')::bigint
                 end
)
select t.id, t.name, t.state, t.finished_at, up.depth
  from up
  join :SCHEMA.tasks t on t.id = up.id
 where up.depth > 0
 order by up.depth desc
