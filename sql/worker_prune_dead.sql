-- worker_prune_dead: forget workers whose heartbeat stopped $1 seconds ago (their tasks are
-- rescued by lease, independently of this).
delete from :SCHEMA.workers where heartbeat_at < now() - $1 * interval '1 second'
