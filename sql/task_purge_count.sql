-- task_purge_count: how many tasks task_purge_batch would delete (for progress). Same parameters
-- but the batch size.
select count(*)::int as n
  from :SCHEMA.tasks
 where state = $2::text:::SCHEMA.task_state
   and state in ('succeeded', 'failed', 'cancelled')
   and ($1::text is null or queue = $1)
   and finished_at < now() - $3 * interval '1 second'
