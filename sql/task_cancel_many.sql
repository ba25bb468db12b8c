-- task_cancel_many: revoke tasks (AsyncResult.revoke, `pgjobs task cancel`), through the SQL API.
-- $1 ids bigint[]
select id from :SCHEMA.cancel($1::bigint[]) as id
