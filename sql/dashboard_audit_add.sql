-- dashboard_audit_add: record an operator action (who, what, when), in the action's own
-- transaction when it changed something, and tell open dashboards (<schema>.dashboard; the
-- payload is the action's name, a hint). Actions are rare, so the NOTIFY's commit lock costs
-- nothing that matters.
-- $1 actor text, $2 address text, $3 action text, $4 target text, $5 outcome text, $6 detail jsonb.
-- Locks: none (an insert). Returns the record's id.
with a as (
  insert into :SCHEMA.audit (actor, address, action, target, outcome, detail)
  values ($1::text, $2::text, $3::text, $4::text, $5::text, coalesce($6::jsonb, '{}'))
  returning id, action
)
select a.id, pg_notify(':SCHEMA.dashboard', a.action) as notified from a
