-- task_prune_finished: delete up to $2 tasks that finished more than $1 seconds ago, oldest first.
-- Bounded batches, so pruning never holds many locks or writes a large WAL burst.
-- $1 retention_s double precision, $2 limit int. Index: tasks_finished_idx.
with old as materialized (
  select id
    from :SCHEMA.tasks
   where state in ('succeeded', 'failed', 'cancelled')
     and finished_at < now() - $1 * interval '1 second'
     -- The succeeded members of a chord still waiting are its results: kept until it fires.
     and not (chord_id is not null and state = 'succeeded'
              and exists (select 1 from :SCHEMA.chords c where c.id = chord_id and c.state = 'waiting'))
   order by finished_at
   limit $2
     for update skip locked
)
delete from :SCHEMA.tasks t using old where t.id = old.id
