-- schedule_remove: delete a schedule. $1 name. Returns the name if it existed.
delete from :SCHEMA.schedules where name = $1 returning name
