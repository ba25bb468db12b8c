-- task_vacuum_due: should a worker VACUUM the tasks table now? Claimed tasks leave dead entries
-- at the front of tasks_ready_idx, which every claim then walks until a vacuum removes them; the
-- floor (../shared/peers/floor) measured a claim of 100 going from 2.5 ms to 9.9 ms with 1.09 M
-- dead tuples, and autovacuum visits a table at most once per autovacuum_naptime (1 min). True
-- when dead tuples exceed $1 and $2 x live tuples, and this role may vacuum the table (owner).
-- Reads the cumulative statistics (shared memory in PG 15): no table access.
select s.n_dead_tup::int8 as dead, s.n_live_tup::int8 as live,
       s.n_dead_tup > $1::int8 and s.n_dead_tup > $2::float8 * s.n_live_tup
         and pg_has_role(current_user, c.relowner, 'USAGE') as due
  from pg_stat_user_tables s
  join pg_class c on c.oid = s.relid
 where s.relid = ':SCHEMA.tasks'::regclass
