-- schedule_list: every schedule, by name. Also what `pgjobs schedule show` reads ($1 name, or null for all).
select name, cron, every::text as every, timezone, task, args, queue, priority, options, misfire,
       enabled, next_run_at, last_run_at, created_at, updated_at
  from :SCHEMA.schedules
 where $1::text is null or name = $1
 order by name
