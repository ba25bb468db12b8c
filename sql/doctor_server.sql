-- doctor_server: one row of server-wide facts for the doctor: the NOTIFY queue's fill (0..1;
-- when full, every NOTIFY fails, and with it every enqueue), the settings that matter to a queue
-- as this session sees them (role and database settings included), whether this role can see
-- other roles' sessions, and inactive replication slots that retain WAL. No parameters.
select pg_notification_queue_usage()::float8 as notify_usage,
       current_setting('idle_in_transaction_session_timeout') as idle_in_transaction_session_timeout,
       current_setting('autovacuum') as autovacuum,
       current_setting('track_counts') as track_counts,
       current_setting('track_activities') as track_activities,
       current_database()::text as database,
       current_user::text as role,
       (select r.rolsuper from pg_roles r where r.rolname = current_user)
         or pg_has_role(current_user, 'pg_read_all_stats', 'member') as sees_all_sessions,
       pg_is_in_recovery() as in_recovery,
       coalesce((select json_agg(json_build_object(
                   'name', s.slot_name, 'type', s.slot_type, 'database', s.database,
                   'retained_bytes', case when not pg_is_in_recovery() and s.restart_lsn is not null
                                          then pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn) end))
                   from pg_replication_slots s where not s.active), '[]'::json) as inactive_slots
