-- doctor_idle_in_transaction: sessions of this database sitting idle inside a transaction, the
-- longest first. Each holds its locks, and (with a snapshot or a transaction id) the xmin
-- horizon, until it commits, rolls back or is ended. No parameters; excludes this session.
select a.pid, a.application_name::text as name, a.usename::text as usename, a.state::text as state,
       extract(epoch from now() - a.state_change)::float8 as idle_s,
       extract(epoch from now() - a.xact_start)::float8 as xact_age_s,
       left(a.query, 200)::text as last_query
  from pg_stat_activity a
 where a.datname = current_database()
   and a.pid <> pg_backend_pid()
   and a.state in ('idle in transaction', 'idle in transaction (aborted)')
 order by a.state_change
 limit 20
