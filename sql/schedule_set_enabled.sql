-- schedule_set_enabled: pause or resume a schedule. $1 name, $2 enabled, $3 next_run_at when
-- resuming (ticks missed while paused are not caught up). Returns the name if it exists.
update :SCHEMA.schedules
   set enabled = $2, next_run_at = coalesce($3, next_run_at), updated_at = now()
 where name = $1
returning name
