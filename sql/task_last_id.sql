-- task_last_id: the highest task id handed out so far (a result handle whose row is missing reads
-- as pending up to this id: a workflow step not enqueued yet). Through last_task_id(), which
-- producers may call. No parameters.
select :SCHEMA.last_task_id()::text as last_id
