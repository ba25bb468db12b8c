-- schedule_lock_due: lock the enabled schedules whose next tick is due, so this scheduler fires
-- them; any number of schedulers run this at once and each due row goes to exactly one of them.
-- Run inside the transaction that inserts the ticks' tasks and advances next_run_at: if the
-- scheduler dies mid-tick, the transaction rolls back and another scheduler fires the tick.
-- $1 limit int. Locks: the due schedule rows (FOR UPDATE SKIP LOCKED). Index: none needed (the
-- table has one row per schedule). Time comes from the database: db_now.
select name, cron, every, extract(epoch from every) * 1000 as every_ms, timezone, task, args, queue,
       priority, options, misfire, next_run_at, last_run_at, now() as db_now
  from :SCHEMA.schedules
 where enabled and next_run_at <= now()
 order by next_run_at
 limit $1
   for update skip locked
