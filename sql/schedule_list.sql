-- schedule_list: every schedule, by name; what `pgjobs schedule list` and `show` read.
-- $1 name text, or null for all. Locks: none.
select name, cron, (extract(epoch from every) * 1000)::float8 as every_ms, timezone, task, args,
       queue, priority, options, misfire, enabled, next_run_at, last_run_at, created_at, updated_at
  from :SCHEMA.schedules
 where $1::text is null or name = $1
 order by name
