-- dashboard_chord_list: the newest chords with their progress (the chord_progress view) and the
-- name of the callback. $1 limit int. Locks: none. Index: none (chords is one row per chord;
-- a top-N sort of it).
select p.chord_id, p.group_id, p.total, p.completed, p.remaining, p.failed, p.state, p.callback_id,
       p.parent_id, p.created_at, p.finished_at, c.callback->'node'->>'name' as callback_name,
       c.callback->'node'->>'t' as callback_kind
  from :SCHEMA.chord_progress p
  join :SCHEMA.chords c on c.id = p.chord_id
 order by p.created_at desc, p.chord_id
 limit $1::int
