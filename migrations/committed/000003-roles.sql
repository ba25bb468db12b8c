--! Previous: sha1:79c17142b6b8f33732b4f8ab743c452ca418e24d
--! Hash: sha1:7afb05028e926a538d017ed01cf3631446ed525b
--! Message: roles

-- Roles: a producer can enqueue and read results but not claim or alter tasks; a worker can do
-- what a worker does. The write API runs as its owner (SECURITY DEFINER, with a fixed
-- search_path), so a producer needs EXECUTE on it and no write privilege on the tables.
-- Create the roles yourself, then: select jobs.grant_producer('app'); select jobs.grant_worker('worker');
-- (or `pgjobs migrate --producer-role app --worker-role worker`).

alter function :SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[])
  security definer set search_path = pg_catalog, pg_temp;
alter function :SCHEMA.apply_canvas(jsonb, bigint, jsonb)
  security definer set search_path = pg_catalog, pg_temp;

-- Functions are executable by PUBLIC by default: only the roles granted below may call ours.
revoke execute on all functions in schema :SCHEMA from public;

create function :SCHEMA.grant_producer(role_name name) returns void
language plpgsql as $$
begin
  execute format('grant usage on schema :SCHEMA to %I', role_name);
  execute format('grant select on :SCHEMA.tasks, :SCHEMA.chords, :SCHEMA.chord_progress, :SCHEMA.schedules, :SCHEMA.workers to %I', role_name);
  -- AsyncResult.get() registers what it waits on.
  execute format('grant select, insert, update, delete on :SCHEMA.result_waiters to %I', role_name);
  execute format('grant execute on function :SCHEMA.enqueue(text, jsonb, text, integer, timestamptz, interval, integer, text, jsonb, bigint), '
                 ':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[]), '
                 ':SCHEMA.apply_canvas(jsonb, bigint, jsonb), :SCHEMA.notify_waiters(bigint[]) to %I', role_name);
end
$$;

create function :SCHEMA.grant_worker(role_name name) returns void
language plpgsql as $$
begin
  execute format('grant usage on schema :SCHEMA to %I', role_name);
  execute format('grant select, insert, update, delete on all tables in schema :SCHEMA to %I', role_name);
  execute format('grant usage, select on all sequences in schema :SCHEMA to %I', role_name);
  execute format('grant execute on all functions in schema :SCHEMA to %I', role_name);
  -- The worker role must not hand out roles or read the migration history it did not write.
  execute format('revoke execute on function :SCHEMA.grant_producer(name), :SCHEMA.grant_worker(name) from %I', role_name);
  execute format('revoke insert, update, delete on :SCHEMA.migrations from %I', role_name);
end
$$;
revoke execute on function :SCHEMA.grant_producer(name), :SCHEMA.grant_worker(name) from public;
