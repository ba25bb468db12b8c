-- result_waiter_add: say that this process waits on these tasks, so finishing them notifies.
-- Also refreshes registered_at of long waits. $1 ids bigint[], $2 waiter uuid. Index: primary key.
insert into :SCHEMA.result_waiters (task_id, waiter)
select unnest($1::bigint[]), $2
on conflict (task_id, waiter) do update set registered_at = now()
