-- schedule_set_enabled: pause or resume a schedule. $1 name, $2 enabled boolean, $3 next_run_at
-- for a resumed schedule: set only if the row was disabled, so ticks missed while paused are not
-- caught up and resuming a running schedule changes nothing.
-- Returns was_enabled (the state before) if the schedule exists. Locks: the schedule's row.
update :SCHEMA.schedules s
   set enabled = $2,
       next_run_at = case when $2 and not old.was_enabled then coalesce($3::timestamptz, s.next_run_at) else s.next_run_at end,
       updated_at = case when old.was_enabled = $2 then s.updated_at else now() end
  from (select name, enabled as was_enabled from :SCHEMA.schedules where name = $1 for update) old
 where s.name = old.name
returning old.was_enabled
