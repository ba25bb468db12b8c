-- task_retry_many: run failed or cancelled tasks again (`pgjobs task retry`), through the SQL API.
-- $1 ids bigint[]
select id from :SCHEMA.retry($1::bigint[]) as id
