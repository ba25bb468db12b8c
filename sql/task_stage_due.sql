-- task_stage_due: make due scheduled ('pending') and backing-off ('retrying') tasks ready, and
-- notify each of their queues once.
-- $1 limit int. Locks: the staged rows (SKIP LOCKED: any number of workers may stage at once).
-- Index: tasks_due_idx (run_at) where state in ('pending', 'retrying').
with due as materialized (
  select id
    from :SCHEMA.tasks
   where state in ('pending', 'retrying') and run_at <= now()
   order by run_at
   limit $1
     for update skip locked
), staged as (
  update :SCHEMA.tasks t set state = 'ready'
    from due where t.id = due.id
  returning t.queue
)
select q.queue, q.n, pg_notify(':SCHEMA.ready', q.queue) as notified
  from (select queue, count(*)::int as n from staged group by queue) q
