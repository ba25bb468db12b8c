-- task_wait_check: what a result waiter reads after registering (ResultWaiters.check). Through
-- wait_check, which locks the rows FOR SHARE so a finish in flight is waited for rather than
-- missed (see migration 000006). $1 ids bigint[]. Index: tasks_pkey.
select * from :SCHEMA.wait_check($1::bigint[])
