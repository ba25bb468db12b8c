-- result_waiter_remove: this process no longer waits on these tasks. $1 ids bigint[], $2 waiter uuid.
delete from :SCHEMA.result_waiters where task_id = any($1::bigint[]) and waiter = $2
