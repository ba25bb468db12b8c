-- schedule_lock_due: lock the enabled schedules whose next tick is due, so this scheduler fires
-- them; any number of schedulers run this at once and each due row goes to exactly one of them.
-- Run inside the transaction that inserts the ticks' tasks and advances next_run_at: if the
-- scheduler dies mid-tick, the transaction rolls back and another scheduler fires the tick.
-- A row inserted with SQL without next_run_at is picked up too, to be given its first tick.
-- A row another scheduler advanced meanwhile is re-checked against the WHERE on its new version
-- (READ COMMITTED), so it is not fired twice.
-- $1 limit int, $2 now timestamptz (null: the database's clock; tests pass their own).
-- Locks: the due schedule rows (FOR UPDATE SKIP LOCKED). Index: none needed (one row per
-- schedule). Time comes from the database: db_now.
select name, cron, every, extract(epoch from every) * 1000 as every_ms, timezone, task, args, queue,
       priority, options, misfire, next_run_at, last_run_at, coalesce($2::timestamptz, now()) as db_now
  from :SCHEMA.schedules
 where enabled and (next_run_at <= coalesce($2::timestamptz, now()) or next_run_at is null)
 order by next_run_at
 limit $1
   for update skip locked
