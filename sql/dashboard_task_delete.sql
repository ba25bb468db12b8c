-- dashboard_task_delete: delete finished tasks (the dashboard's delete). Unfinished tasks are
-- left alone (cancel them first: a running task's worker would acknowledge into nothing, a
-- chain or chord would wait for a step that vanished), and so are the succeeded members of a
-- chord still waiting, whose callback reads their results (purge's rule, task_purge_batch).
-- $1 ids bigint[]. Returns the ids deleted. Locks: the deleted rows. Index: tasks_pkey.
delete from :SCHEMA.tasks t
 where t.id = any($1::bigint[])
   and t.state in ('succeeded', 'failed', 'cancelled')
   and not (t.chord_id is not null and t.state = 'succeeded'
            and exists (select 1 from :SCHEMA.chords c where c.id = t.chord_id and c.state = 'waiting'))
returning t.id
