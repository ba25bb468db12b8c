-- result_waiter_prune: forget waiters that stopped refreshing (their process died). $1 max_age_s.
delete from :SCHEMA.result_waiters where registered_at < now() - $1 * interval '1 second'
