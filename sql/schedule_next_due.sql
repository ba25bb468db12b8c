-- schedule_next_due: milliseconds until the next enabled schedule is due (null: none), so a
-- scheduler sleeps exactly that long. Time from the database.
select (extract(epoch from min(next_run_at) - now()) * 1000)::float8 as in_ms, now() as db_now
  from :SCHEMA.schedules
 where enabled
