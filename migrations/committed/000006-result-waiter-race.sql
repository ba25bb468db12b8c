--! Previous: sha1:9881f6fbb33d873cecd7ee0ada7319ffcabe9073
--! Hash: sha1:b4597736a7997c0d95ca4a8200f7abde144b1028
--! Message: result waiter race

-- Result waiters: close the race between registering a waiter and a finish in flight.
--
-- Measured: 5 of 60 `delay()` + `get()` calls (resultPoll 60 s) hung until their timeout. The
-- finish's statement could start before the waiter registered and read the task before the finish
-- committed: the waiter saw 'running', the finish saw no waiter, nobody notified. The waiter now
-- reads the tasks FOR SHARE, which waits for a finish holding the row; a finish that takes the
-- row after that read looks for waiters afterwards, in notify_waiters, whose query (a VOLATILE
-- function) takes a fresh snapshot and so sees the committed registration.

-- SECURITY DEFINER: FOR SHARE needs UPDATE privilege, which a producer does not have.
create function :SCHEMA.wait_check(ids bigint[])
returns table (id bigint, name text, state :SCHEMA.task_state, result jsonb, error jsonb, progress jsonb,
               attempts smallint, max_attempts smallint, queue text)
language sql volatile
security definer set search_path = pg_catalog, pg_temp
as $$
  select t.id, t.name, t.state, t.result, t.error, t.progress, t.attempts, t.max_attempts, t.queue
    from :SCHEMA.tasks t
   where t.id = any(ids)
     for share
$$;
revoke execute on function :SCHEMA.wait_check(bigint[]) from public;

create or replace function :SCHEMA.grant_producer(role_name name) returns void
language plpgsql as $$
begin
  execute format('grant usage on schema :SCHEMA to %I', role_name);
  execute format('grant select on :SCHEMA.tasks, :SCHEMA.chords, :SCHEMA.chord_progress, :SCHEMA.schedules, :SCHEMA.workers to %I', role_name);
  -- AsyncResult.get() registers what it waits on.
  execute format('grant select, insert, update, delete on :SCHEMA.result_waiters to %I', role_name);
  execute format('grant execute on function :SCHEMA.enqueue(text, jsonb, text, integer, timestamptz, interval, integer, text, jsonb, bigint), '
                 ':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[]), '
                 ':SCHEMA.apply_canvas(jsonb, bigint, jsonb), :SCHEMA.notify_waiters(bigint[]), :SCHEMA.wait_check(bigint[]) to %I', role_name);
end
$$;
