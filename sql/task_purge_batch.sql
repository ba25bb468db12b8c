-- task_purge_batch: delete up to $4 finished tasks of queue $1 (null: all queues) in state $2
-- that finished more than $3 seconds ago. Run repeatedly until it deletes fewer than $4, so a
-- large purge never holds many locks at once and reports progress between batches.
-- Index: tasks_finished_idx (finished_at) where state in ('succeeded', 'failed', 'cancelled').
with old as materialized (
  select id
    from :SCHEMA.tasks
   where state = $2::text:::SCHEMA.task_state
     and state in ('succeeded', 'failed', 'cancelled')
     and ($1::text is null or queue = $1)
     and finished_at < now() - $3 * interval '1 second'
   order by finished_at
   limit $4
     for update skip locked
)
delete from :SCHEMA.tasks t using old where t.id = old.id
