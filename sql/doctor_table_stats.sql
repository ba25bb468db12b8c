-- doctor_table_stats: for each table of the schema, live and dead tuples, when (auto)vacuum and
-- (auto)analyze last ran, sizes, and the table's storage options (autovacuum_enabled=false is a
-- finding). No parameters. Reads catalogs and the cumulative statistics (pg_stat_user_tables),
-- which lag by up to a second (PGSTAT_MIN_INTERVAL); takes no locks on the tables.
select c.relname::text as table_name,
       coalesce(s.n_live_tup, 0)::float8 as live,
       coalesce(s.n_dead_tup, 0)::float8 as dead,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_autoanalyze,
       coalesce(s.vacuum_count, 0)::int as vacuum_count,
       coalesce(s.autovacuum_count, 0)::int as autovacuum_count,
       extract(epoch from now() - greatest(s.last_vacuum, s.last_autovacuum))::float8 as vacuum_age_s,
       pg_relation_size(c.oid)::float8 as heap_bytes,
       pg_total_relation_size(c.oid)::float8 as total_bytes,
       coalesce(c.reloptions, '{}')::text[] as reloptions
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_stat_user_tables s on s.relid = c.oid
 where n.nspname = ':SCHEMA' and c.relkind = 'r'
 order by c.relname
