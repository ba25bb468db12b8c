-- task_purge_count: how many tasks task_purge_batch would delete (the total for its progress,
-- and `pgjobs purge --dry-run`). Same parameters and conditions, without the batch size.
-- $1 queue text, $2 state text, $3 older_than_s float8. Index: tasks_finished_idx.
select count(*)::int as n
  from :SCHEMA.tasks t
 where t.state = $2::text:::SCHEMA.task_state
   and t.state in ('succeeded', 'failed', 'cancelled')
   and ($1::text is null or t.queue = $1::text)
   and t.finished_at < now() - $3::float8 * interval '1 second'
   and not (t.chord_id is not null and t.state = 'succeeded'
            and exists (select 1 from :SCHEMA.chords c where c.id = t.chord_id and c.state = 'waiting'))
