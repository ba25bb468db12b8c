-- task_purge_batch: delete up to $4 finished tasks of queue $1 (null: all queues) in state $2
-- that finished more than $3 seconds ago. Run repeatedly until it deletes fewer than $4, so a
-- large purge never holds many locks at once and reports progress between batches.
-- Succeeded members of a chord still waiting are kept: the chord's callback reads their results
-- (in member order) when its last member succeeds.
-- $1 queue text, $2 state text, $3 older_than_s float8, $4 limit int.
-- Locks: the deleted rows (SKIP LOCKED: rows a worker holds are left for the next batch).
-- Index: tasks_finished_idx (finished_at) where state in ('succeeded', 'failed', 'cancelled').
with old as materialized (
  select t.id
    from :SCHEMA.tasks t
   where t.state = $2::text:::SCHEMA.task_state
     and t.state in ('succeeded', 'failed', 'cancelled')
     and ($1::text is null or t.queue = $1::text)
     and t.finished_at < now() - $3::float8 * interval '1 second'
     and not (t.chord_id is not null and t.state = 'succeeded'
              and exists (select 1 from :SCHEMA.chords c where c.id = t.chord_id and c.state = 'waiting'))
   order by t.finished_at
   limit $4::int
     for update skip locked
)
delete from :SCHEMA.tasks t using old where t.id = old.id
