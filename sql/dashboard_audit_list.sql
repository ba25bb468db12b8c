-- dashboard_audit_list: the audit log, newest first, keyset-paged like the task list.
-- $1 before_id bigint (null: the newest), $2 target text (null: all; e.g. a task id),
-- $3 limit int. Locks: none. Index: audit_pkey, scanned backward.
select id, at, actor, address, action, target, outcome, detail
  from :SCHEMA.audit
 where id < coalesce($1::bigint, 9223372036854775807)
   and ($2::text is null or target = $2::text)
 order by id desc
 limit $3::int
