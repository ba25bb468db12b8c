-- task_handed_unknown: the tasks running under this worker's id that it does not know: handed
-- off while its LISTEN connection was down (the notification was lost), or while it stopped.
-- After a worker_offer_retract, every hand-off to it has committed, so this finds them all.
-- $1 worker_id uuid, $2 known ids bigint[]. Columns as task_claim_many's.
-- Locks: none. Index: tasks_leased_idx (worker_id) where lease_until is not null.
select t.id, t.name, t.queue, t.args, t.attempts, t.max_attempts, t.timeout_ms, t.headers,
       t.parent_id, t.group_id, t.chord_id, t.workflow, t.run_at, t.started_at, t.priority
  from :SCHEMA.tasks t
 where t.worker_id = $1 and t.lease_until is not null and t.state = 'running'
   and t.id <> all($2::bigint[])
 order by t.id
