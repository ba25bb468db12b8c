-- dashboard_queue_pause: pause a queue through the SQL API (jobs.pause_queue): workers stop
-- claiming its tasks. $1 queue text, $2 actor text. Returns changed (false: already paused).
-- Locks: the queue's row in jobs.queues.
select :SCHEMA.pause_queue($1::text, $2::text) as changed
