--! Previous: sha1:9a7127d422205ae583df1831d7e0251d8280ac99
--! Hash: sha1:6a6a15ebf22941034931fb4b594499ea566798b4
--! Message: hand-off to idle workers

-- Hand-off: an idle worker offers free slots, and an enqueue outside any caller's transaction
-- gives its task straight to one of them, already claimed, in its own commit.
--
-- Before, a task enqueued for an idle worker started after one claim round trip: the ready
-- NOTIFY woke the worker, which then claimed (UPDATE ... FOR UPDATE SKIP LOCKED, its own
-- commit) and only then ran the handler. Instrumented (peers harness, 300 tasks 10 ms apart):
-- that claim was 1.02 ms of the 1.2 ms from "enqueue resolved" to "handler started" at p50,
-- 3.64 ms at p99. Here the enqueue claims on the worker's behalf: the row is inserted 'running'
-- with the worker's id and lease, and the worker is told on its own channel with the whole row
-- as payload, so it starts the handler as soon as the notification arrives.
--
-- Exactly once as before: the offer row is locked (FOR UPDATE SKIP LOCKED) by the enqueue that
-- takes a slot, so two enqueues never take the same slot, and a worker never has more tasks
-- than slots: it counts an offered slot as busy until it learns, by retracting the offer, how
-- many were taken. A task handed to a worker that dies is rescued when its lease lapses, like
-- any claimed task. A notification lost with a broken LISTEN connection is made good by the
-- worker after it reconnects: it retracts its offer and adopts the running tasks that carry its
-- id and that it does not know.
--
-- worker_offers is UNLOGGED: it holds nothing that must survive a crash (after one, workers
-- reconnect and offer again; an empty table only means enqueues take the ready path), and its
-- updates write no WAL.
create unlogged table if not exists :SCHEMA.worker_offers (
  worker_id  uuid primary key,
  -- An offer's generation, chosen by the worker; handed-off tasks carry it in their payload.
  gen        bigint not null,
  queues     text[] not null,
  -- The LISTEN channel the worker is told on.
  channel    text not null check (length(channel) between 1 and 63),
  lease_ms   integer not null check (lease_ms > 0),
  -- Slots still free, and slots taken by enqueues since the offer was made.
  free       integer not null check (free >= 0),
  taken      integer not null default 0,
  -- A worker that died without retracting stops getting tasks after this (its heartbeat moves it).
  until      timestamptz not null
);

-- One task, handed to an idle worker when one offers a slot for its queue, else enqueued as
-- enqueue_many does (ready, or pending with a run_at / delay). Returns the task's id.
--
-- For enqueues outside a transaction only (the TypeScript client's delay() and enqueue() use
-- it when they run on their own): the lease starts at the insert, so a caller's transaction
-- that stayed open after it would let the lease run while the worker cannot see the row yet.
-- Inside a transaction, call enqueue or enqueue_many.
--
-- A row too large for a notification is enqueued ready; one with a dedup key, a run_at or a
-- delay, or that a check would refuse, goes through enqueue_many (its semantics, its messages).
create or replace function :SCHEMA.enqueue_handoff(
  name          text,
  args          jsonb default '[]',
  queue         text default 'default',
  priority      integer default 0,
  run_at        timestamptz default null,
  max_attempts  integer default 4,
  key           text default null,
  headers       jsonb default '{}',
  parent_id     bigint default null,
  group_id      uuid default null,
  chord_id      uuid default null,
  timeout_ms    integer default null,
  workflow      jsonb default null,
  delay_ms      bigint default null
) returns bigint
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  q text := coalesce(queue, 'default');
  -- The offer taken, if any (all null when none is).
  w_id uuid;
  w_gen bigint;
  w_channel text;
  w_lease integer;
  t record;
begin
  -- The common case: a valid task to run now, without a dedup key. Anything else (and a bad
  -- value, for its message) goes through enqueue_many below.
  if key is null and run_at is null and coalesce(delay_ms, 0) = 0
     and length(name) between 1 and 200
     and q ~ '^[A-Za-z0-9_.:-]+$' and length(q) <= 63
     and coalesce(priority, 0) between -100 and 100
     and coalesce(max_attempts, 4) between 1 and 1000
     and jsonb_typeof(coalesce(args, '[]')) = 'array'
     and jsonb_typeof(coalesce(headers, '{}')) = 'object' then
    -- An offered slot, if the row fits a notification with room to spare (NOTIFY takes under
    -- 8,000 bytes: the row's JSON and about 500 bytes of the rest).
    if octet_length(coalesce(args, '[]')::text) + octet_length(coalesce(headers, '{}')::text)
       + coalesce(octet_length(workflow::text), 0) + octet_length(name) + octet_length(q) < 7000 then
      select w.worker_id, w.gen, w.channel, w.lease_ms into w_id, w_gen, w_channel, w_lease
        from :SCHEMA.worker_offers w
       where w.free > 0 and q = any(w.queues) and w.until > clock_timestamp()
         and not exists (select from :SCHEMA.queues p where p.name = q and p.paused)
       limit 1
         for update skip locked;
    end if;
    -- Claimed for the offering worker, or ready (the table's statement trigger then sends the
    -- ready notification). One row, so a plain insert: enqueue_many's array validation would
    -- only cost time here.
    insert into :SCHEMA.tasks as x (name, args, queue, priority, run_at, state, max_attempts,
                                    headers, parent_id, group_id, chord_id, timeout_ms, workflow,
                                    worker_id, attempts, started_at, lease_until)
    values (name, coalesce(args, '[]'), q, coalesce(priority, 0), now(),
            case when w_id is null then 'ready':::SCHEMA.task_state else 'running' end,
            coalesce(max_attempts, 4), coalesce(headers, '{}'), parent_id, group_id, chord_id,
            timeout_ms, workflow, w_id, case when w_id is null then 0 else 1 end,
            case when w_id is not null then clock_timestamp() end,
            clock_timestamp() + w_lease * interval '1 millisecond')
    returning x.* into t;
    if w_id is not null then
      update :SCHEMA.worker_offers w set free = w.free - 1, taken = w.taken + 1
       where w.worker_id = w_id;
      perform pg_notify(w_channel, json_build_object(
        'w', w_id, 'gen', w_gen, 'id', t.id::text, 'name', t.name, 'queue', t.queue,
        'args', t.args, 'attempts', t.attempts, 'max_attempts', t.max_attempts,
        'timeout_ms', t.timeout_ms, 'headers', t.headers, 'parent_id', t.parent_id::text,
        'group_id', t.group_id, 'chord_id', t.chord_id, 'workflow', t.workflow,
        'run_at', t.run_at, 'started_at', t.started_at, 'priority', t.priority)::text);
    end if;
    return t.id;
  end if;
  return (select e.id
            from :SCHEMA.enqueue_many(array[name], array[args], array[queue], array[priority],
                                      array[run_at], array[max_attempts], array[key], array[headers],
                                      array[parent_id], array[group_id], array[chord_id],
                                      array[timeout_ms], array[workflow], array[delay_ms]) e);
end
$$;

revoke execute on function :SCHEMA.enqueue_handoff(text, jsonb, text, integer, timestamptz, integer, text, jsonb, bigint, uuid, uuid, integer, jsonb, bigint) from public;

-- Roles made before this migration: whoever may call enqueue_many may call this.
do $$
declare
  g record;
begin
  for g in
    select r.rolname::text as role_name
      from pg_proc p
      cross join lateral aclexplode(p.proacl) a
      join pg_roles r on r.oid = a.grantee
     where p.oid = to_regprocedure(':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[], bigint[])')
       and a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner
  loop
    execute format('grant execute on function :SCHEMA.enqueue_handoff(text, jsonb, text, integer, timestamptz, integer, text, jsonb, bigint, uuid, uuid, integer, jsonb, bigint) to %I', g.role_name);
  end loop;
  -- Workers made before this migration get the new table (grant_worker grants on all tables).
  for g in
    select r.rolname::text as role_name
      from pg_class c
      cross join lateral aclexplode(c.relacl) a
      join pg_roles r on r.oid = a.grantee
     where c.oid = ':SCHEMA.tasks'::regclass and a.privilege_type = 'UPDATE' and a.grantee <> c.relowner
  loop
    execute format('grant select, insert, update, delete on :SCHEMA.worker_offers to %I', g.role_name);
  end loop;
end
$$;

create or replace function :SCHEMA.grant_producer(role_name name) returns void
language plpgsql as $$
begin
  execute format('grant usage on schema :SCHEMA to %I', role_name);
  execute format('grant select on :SCHEMA.tasks, :SCHEMA.chords, :SCHEMA.chord_progress, :SCHEMA.schedules, :SCHEMA.workers to %I', role_name);
  -- AsyncResult.get() registers what it waits on.
  execute format('grant select, insert, update, delete on :SCHEMA.result_waiters to %I', role_name);
  execute format('grant execute on function :SCHEMA.enqueue(text, jsonb, text, integer, timestamptz, interval, integer, text, jsonb, bigint), '
                 ':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[], bigint[]), '
                 ':SCHEMA.enqueue_handoff(text, jsonb, text, integer, timestamptz, integer, text, jsonb, bigint, uuid, uuid, integer, jsonb, bigint), '
                 ':SCHEMA.apply_canvas(jsonb, bigint, jsonb), :SCHEMA.notify_waiters(bigint[]), :SCHEMA.wait_check(bigint[]) to %I', role_name);
end
$$;
