-- dashboard_queue_resume: resume a paused queue through the SQL API (jobs.resume_queue), which
-- wakes its workers. $1 queue text, $2 actor text. Returns changed (false: it was not paused).
-- Locks: the queue's row in jobs.queues.
select :SCHEMA.resume_queue($1::text, $2::text) as changed
