-- doctor_xmin_holders: what holds back the xmin horizon that vacuum of this database's tables
-- obeys, oldest first: sessions of this database with a snapshot or a transaction id (other
-- databases' sessions do not hold back this database's tables, Postgres 14+), prepared
-- transactions of this database, and replication slots with an xmin (physical slots with
-- hot_standby_feedback; a logical slot's catalog_xmin holds back only the system catalogs).
-- No parameters. Excludes this session and autovacuum (its own snapshot does not count).
-- Sessions of other roles show only with pg_read_all_stats (pg_monitor) or superuser.
select h.kind, h.pid, h.name, h.usename, h.state, h.xmin_age, h.since,
       extract(epoch from now() - h.since)::float8 as age_s,
       extract(epoch from now() - h.state_change)::float8 as state_age_s,
       h.query
  from (
    select 'session'::text as kind, a.pid, a.application_name::text as name, a.usename::text as usename,
           a.state::text as state,
           greatest(age(a.backend_xmin), age(a.backend_xid))::bigint as xmin_age,
           a.xact_start as since, a.state_change, left(a.query, 200)::text as query
      from pg_stat_activity a
     where a.datname = current_database()
       and a.pid <> pg_backend_pid()
       and a.backend_type not in ('autovacuum worker', 'autovacuum launcher')
       and (a.backend_xmin is not null or a.backend_xid is not null)
    union all
    select 'prepared transaction', null, p.gid::text, p.owner::text, 'prepared',
           age(p.transaction)::bigint, p.prepared, p.prepared, null
      from pg_prepared_xacts p
     where p.database = current_database()
    union all
    select 'replication slot', r.active_pid, r.slot_name::text, null,
           case when r.active then 'active' else 'inactive' end,
           age(r.xmin)::bigint, null, null, null
      from pg_replication_slots r
     where r.xmin is not null
  ) h
 order by h.xmin_age desc nulls last, h.since nulls last
 limit 20
