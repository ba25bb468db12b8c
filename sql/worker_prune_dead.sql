-- worker_prune_dead: forget workers whose heartbeat stopped $1 seconds ago (their tasks are
-- rescued by lease, independently of this), and hand-off offers that lapsed as long ago (an
-- enqueue already ignores a lapsed offer).
with offers as (
  delete from :SCHEMA.worker_offers where until < now() - $1 * interval '1 second'
)
delete from :SCHEMA.workers where heartbeat_at < now() - $1 * interval '1 second'
