-- dashboard_chord_show: one chord's progress, its callback and the state of the callback's
-- task once it exists. $1 chord_id uuid. Locks: none. Index: chords_pkey, tasks_pkey.
select p.chord_id, p.group_id, p.total, p.completed, p.remaining, p.failed, p.state, p.callback_id,
       p.parent_id, p.created_at, p.finished_at, c.callback->'node'->>'name' as callback_name,
       c.callback->'node'->>'t' as callback_kind, c.callback->'node' as callback,
       t.state as callback_state, t.name as callback_task_name
  from :SCHEMA.chord_progress p
  join :SCHEMA.chords c on c.id = p.chord_id
  left join :SCHEMA.tasks t on t.id = p.callback_id
 where p.chord_id = $1::uuid
