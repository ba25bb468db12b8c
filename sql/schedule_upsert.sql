-- schedule_upsert: create a schedule, or (code-defined schedules, synced at worker start) update
-- its definition. next_run_at is recomputed by the caller only when the timing changed.
-- $1 name, $2 cron, $3 every_ms float8, $4 timezone, $5 task, $6 args jsonb, $7 queue,
-- $8 priority int, $9 options jsonb, $10 misfire, $11 next_run_at, $12 replace boolean
-- Returns inserted = true for a new row; with $12 false an existing name changes nothing.
insert into :SCHEMA.schedules as s (name, cron, every, timezone, task, args, queue, priority, options, misfire, next_run_at)
values ($1, $2, case when $3::float8 is null then null else $3::float8 * interval '1 millisecond' end, $4, $5, $6, $7, $8, $9, $10, $11)
on conflict (name) do update
   set cron = excluded.cron, every = excluded.every, timezone = excluded.timezone, task = excluded.task,
       args = excluded.args, queue = excluded.queue, priority = excluded.priority,
       options = excluded.options, misfire = excluded.misfire,
       next_run_at = case when s.cron is not distinct from excluded.cron and s.every is not distinct from excluded.every
                           and s.timezone = excluded.timezone then s.next_run_at else excluded.next_run_at end,
       updated_at = now()
 where $12
returning (xmax = 0) as inserted
