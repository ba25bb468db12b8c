-- dashboard_task_log_prune: delete up to $2 task log lines older than $1 seconds, so a large
-- backlog goes in bounded batches. Locks: the deleted rows. Index: task_logs_at_idx (BRIN).
with old as materialized (
  select ctid from :SCHEMA.task_logs where at < now() - $1::float8 * interval '1 second' limit $2::int
)
delete from :SCHEMA.task_logs t using old where t.ctid = old.ctid
