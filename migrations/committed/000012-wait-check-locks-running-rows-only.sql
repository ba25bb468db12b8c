--! Previous: sha1:967648eb1f14d1810424f21340eee080c420b865
--! Hash: sha1:e3969d8468ac573fcea14186886dc674c84f674a
--! Message: wait check locks running rows only

-- wait_check locks only the rows a finish could be changing.
--
-- Found: locking every waited-on row FOR SHARE made a claim (FOR UPDATE SKIP LOCKED) skip a
-- ready task whose result someone was reading at that moment: the task ran out of priority order,
-- or — when that claim then came back short and the worker's poll was long — waited for the next
-- poll (a test's 60 s). Only a running task can be finished by a statement in flight; a ready or
-- scheduled one must be claimed first, and the finish that follows looks for waiters after this
-- read. So: read everything without a lock, then lock (and re-read) only the rows that were
-- running.
create or replace function :SCHEMA.wait_check(ids bigint[])
returns table (id bigint, name text, state :SCHEMA.task_state, result jsonb, error jsonb, progress jsonb,
               attempts smallint, max_attempts smallint, queue text)
language plpgsql volatile
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  running bigint[];
begin
  select array_agg(t.id) into running
    from :SCHEMA.tasks t
   where t.id = any(ids) and t.state = 'running';
  return query
  select t.id, t.name, t.state, t.result, t.error, t.progress, t.attempts, t.max_attempts, t.queue
    from :SCHEMA.tasks t
   where t.id = any(ids) and (running is null or t.id <> all(running));
  if running is not null then
    return query
    select t.id, t.name, t.state, t.result, t.error, t.progress, t.attempts, t.max_attempts, t.queue
      from :SCHEMA.tasks t
     where t.id = any(running)
       for share;
  end if;
end
$$;
