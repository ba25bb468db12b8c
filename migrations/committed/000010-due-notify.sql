--! Previous: sha1:1436020a0bc9e1deae3bddffc6b75da40f417ace
--! Hash: sha1:9100994c386cea5b50e5b92d099fb527509d7944
--! Message: due notify

-- Wake workers for scheduled tasks, not only runnable ones.
--
-- Measured: a task with a 0.3 s countdown ran ~1.9 s late, at the next poll: inserting a
-- 'pending' row notified nobody, so a running worker learned of it only by polling. The insert
-- trigger now also sends one `<schema>.due` per statement with pending rows (payload: the
-- milliseconds until the earliest of them, by the database's clock), and workers arm a timer
-- for it.
create or replace function :SCHEMA.tasks_notify_inserted() returns trigger
language plpgsql as $$
declare
  due_in double precision;
begin
  perform pg_notify(':SCHEMA.ready', q.queue)
    from (select distinct n.queue from new_rows n where n.state = 'ready') q;
  select extract(epoch from min(n.run_at) - now()) * 1000 into due_in
    from new_rows n where n.state = 'pending';
  if due_in is not null then
    perform pg_notify(':SCHEMA.due', greatest(0, round(due_in))::bigint::text);
  end if;
  return null;
end
$$;

-- A result handle no longer guesses from the id sequence whether a missing task is still to
-- come (a rolled-back enqueue also uses up an id): the caller says so (mayNotExistYet).
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

drop function if exists :SCHEMA.last_task_id();
