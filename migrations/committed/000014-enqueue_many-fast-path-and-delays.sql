--! Previous: sha1:558ca7c1d9d189ac3641a489f29a3c72e2cde2fe
--! Hash: sha1:13ef81df4ef3eea236bea7138d72b0fda87b519a
--! Message: enqueue_many fast path and delays

-- enqueue_many, faster for the common case (no dedup keys), and with delays.
--
-- Measured on 1,000-row statements from node-postgres (parameters as the client sends them),
-- interleaved, one connection: 000008's function 55-62k rows/s, a bare INSERT ... SELECT FROM
-- unnest(...) of the same parameters 82-85k rows/s. The difference was the validation pass (a
-- 6-array unnest with a regex per row, 2-3 ms per statement) and the materialised CTE that drew
-- ids before inserting (1.5 ms). Both go: validation checks whole arrays (and each distinct
-- queue name once) and searches for the offending row only when a check fails; ids come back
-- from INSERT ... RETURNING, ordered by id, which is input order.
--
-- It also takes delays (delays_ms bigint[], last): a countdown from TypeScript becomes
-- run_at on the database's clock (STYLE.md point 10), not the client's. Before, the client sent
-- run_at = its own now() + countdown, so a host whose clock ran ahead or behind made the task run
-- early or late by as much.
--
-- A new parameter changes the function's identity: the old one is dropped and its EXECUTE
-- grants (producer and worker roles made before this migration) are carried over.

-- A plain temporary table, dropped below: this file also works outside a transaction (psql -f).
drop table if exists pg_temp.pgjobs_enqueue_many_grantees;
create temporary table pgjobs_enqueue_many_grantees as
select r.rolname::text as role_name
  from pg_proc p
  cross join lateral aclexplode(p.proacl) a
  join pg_roles r on r.oid = a.grantee
 where p.oid = to_regprocedure(':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[])')
   and a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner;

drop function if exists :SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[]);

create or replace function :SCHEMA.enqueue_many(
  names         text[],
  args          jsonb[] default null,
  queues        text[] default null,
  priorities    integer[] default null,
  run_ats       timestamptz[] default null,
  max_attempts  integer[] default null,
  keys          text[] default null,
  headers       jsonb[] default null,
  parent_ids    bigint[] default null,
  group_ids     uuid[] default null,
  chord_ids     uuid[] default null,
  timeouts_ms   integer[] default null,
  workflows     jsonb[] default null,
  delays_ms     bigint[] default null
) returns table (id bigint)
language plpgsql
-- Re-stated: CREATE OR REPLACE resets what 000003 set.
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  n integer := coalesce(cardinality(names), 0);
  bad record;
  ids bigint[];
begin
  if n = 0 then
    return;
  end if;
  -- Validate before writing anything. Whole arrays are checked first, a queue name once per
  -- distinct name (one regex per row, and a pass over all columns together, were 2-3 ms of a
  -- 16 ms statement of 1,000 rows); only a batch that fails is searched for its first bad row,
  -- to name the task and the value.
  if greatest(cardinality(args), cardinality(queues), cardinality(priorities), cardinality(run_ats),
              cardinality(max_attempts), cardinality(keys), cardinality(headers), cardinality(parent_ids),
              cardinality(group_ids), cardinality(chord_ids), cardinality(timeouts_ms), cardinality(workflows),
              cardinality(delays_ms)) > n
     or exists (select from unnest(names) x where x is null or length(x) not between 1 and 200)
     or exists (select from (select distinct x from unnest(queues) x) d where d.x !~ '^[A-Za-z0-9_.:-]{1,63}$')
     or exists (select from unnest(priorities) x where x not between -100 and 100)
     or exists (select from unnest(max_attempts) x where x not between 1 and 1000)
     or exists (select from unnest(args) x where jsonb_typeof(x) <> 'array')
     or exists (select from unnest(headers) x where jsonb_typeof(x) <> 'object') then
    select u.ord, u.name, u.queue, u.priority, u.max_attempts, u.args, u.headers into bad
    from unnest(names, queues, priorities, max_attempts, args, headers)
           with ordinality as u(name, queue, priority, max_attempts, args, headers, ord)
    where u.name is null or length(u.name) not between 1 and 200
       or (u.queue is not null and u.queue !~ '^[A-Za-z0-9_.:-]{1,63}$')
       or (u.priority is not null and u.priority not between -100 and 100)
       or (u.max_attempts is not null and u.max_attempts not between 1 and 1000)
       or (u.args is not null and jsonb_typeof(u.args) <> 'array')
       or (u.headers is not null and jsonb_typeof(u.headers) <> 'object')
    order by u.ord limit 1;
    if found then
      raise exception using errcode = '22023', message = case
        when bad.name is null or length(bad.name) not between 1 and 200 then
          format('pgjobs: task #%s has an invalid name %L: give a name of 1 to 200 characters', bad.ord, bad.name)
        when bad.queue !~ '^[A-Za-z0-9_.:-]{1,63}$' then
          format('pgjobs: task %s: invalid queue name %L: use 1 to 63 letters, digits, "_", ".", ":" or "-"', bad.name, bad.queue)
        when bad.priority not between -100 and 100 then
          format('pgjobs: task %s: priority %s is out of range: use -100 to 100 (higher runs first)', bad.name, bad.priority)
        when bad.max_attempts not between 1 and 1000 then
          format('pgjobs: task %s: max_attempts %s is out of range: use 1 to 1000', bad.name, bad.max_attempts)
        when jsonb_typeof(bad.args) <> 'array' then
          format('pgjobs: task %s: args must be a JSON array, got %s', bad.name, jsonb_typeof(bad.args))
        else
          format('pgjobs: task %s: headers must be a JSON object, got %s', bad.name, jsonb_typeof(bad.headers))
      end;
    end if;
    if not found then
      raise exception using errcode = '22023',
        message = format('pgjobs: enqueue_many got arrays of different lengths (%s names): pass one element per task in every array', n);
    end if;
  end if;

  -- A delay (a countdown) becomes run_at on the database's clock, not the caller's: hosts whose
  -- clocks disagree still run it after the delay they asked for. A run_at given too wins.
  if delays_ms is not null then
    select u.ord, u.delay_ms into bad
      from unnest(delays_ms) with ordinality as u(delay_ms, ord)
     where u.delay_ms < 0
     order by u.ord limit 1;
    if found then
      raise exception using errcode = '22023',
        message = format('pgjobs: task %s: delay %s ms is negative: use 0 or more', names[bad.ord], bad.delay_ms);
    end if;
    select array_agg(coalesce(u.run_at, now() + u.delay_ms * interval '1 millisecond') order by u.ord)
      into run_ats
      from unnest(run_ats, delays_ms) with ordinality as u(run_at, delay_ms, ord);
  end if;

  -- Without dedup keys (the common case) a plain insert: ON CONFLICT would make every row a
  -- speculative insertion (an extra WAL record each) for nothing. Rows go in input order and
  -- draw their ids (the identity default) in that order, so ascending ids are input order; no
  -- materialised copy of the input is needed to map them back (that copy and its two sorts were
  -- 1.5 ms of the statement above).
  if keys is null or cardinality(array_remove(keys, null)) = 0 then
    return query
    with ins as (
      insert into :SCHEMA.tasks as t (name, args, queue, priority, run_at, state, max_attempts,
                                      headers, parent_id, group_id, chord_id, timeout_ms, workflow)
      select u.name, coalesce(u.args, '[]'), coalesce(u.queue, 'default'), coalesce(u.priority, 0),
             coalesce(u.run_at, now()),
             case when u.run_at > now() then 'pending' else 'ready' end:::SCHEMA.task_state,
             coalesce(u.max_attempts, 4), coalesce(u.headers, '{}'), u.parent_id, u.group_id,
             u.chord_id, u.timeout_ms, u.workflow
      from unnest(names, args, queues, priorities, run_ats, max_attempts, headers,
                  parent_ids, group_ids, chord_ids, timeouts_ms, workflows)
        with ordinality as u(name, args, queue, priority, run_at, max_attempts, headers,
                             parent_id, group_id, chord_id, timeout_ms, workflow, ord)
      order by u.ord
      returning t.id
    )
    select ins.id from ins order by ins.id;
    return;
  end if;

  -- Ids are drawn in input order, so the result can be returned in input order.
  -- With dedup keys: insert what no unfinished task holds; the others take the holder's id. A
  -- holder can finish between our conflict and the lookup; those rows are inserted again.
  for attempt in 1 .. 5 loop
    with input as (
      select nextval(':SCHEMA.tasks_id_seq'::regclass) as id, u.*
      from unnest(names, args, queues, priorities, run_ats, max_attempts, keys, headers,
                  parent_ids, group_ids, chord_ids, timeouts_ms, workflows)
        with ordinality as u(name, args, queue, priority, run_at, max_attempts, key, headers,
                             parent_id, group_id, chord_id, timeout_ms, workflow, ord)
      where ids is null or ids[u.ord] is null
    ),
    ins as (
      insert into :SCHEMA.tasks as t (id, name, args, queue, priority, run_at, state, max_attempts,
                                      key, headers, parent_id, group_id, chord_id, timeout_ms, workflow)
      select i.id, i.name, coalesce(i.args, '[]'), coalesce(i.queue, 'default'), coalesce(i.priority, 0),
             coalesce(i.run_at, now()),
             case when i.run_at > now() then 'pending' else 'ready' end:::SCHEMA.task_state,
             coalesce(i.max_attempts, 4), i.key, coalesce(i.headers, '{}'), i.parent_id, i.group_id,
             i.chord_id, i.timeout_ms, i.workflow
      from input i order by i.ord
      on conflict (key) where key is not null and state in ('pending', 'ready', 'running', 'retrying')
      do nothing
      returning t.id
    )
    select array_agg(coalesce(case when ids is not null then ids[o.ord] end, i.id_if_inserted) order by o.ord)
      into ids
      from generate_series(1, n) as o(ord)
      left join (select i.ord, ins.id as id_if_inserted from input i join ins on ins.id = i.id) i on i.ord = o.ord;

    -- A new statement sees a holder that a concurrent transaction committed while we waited on it.
    select array_agg(coalesce(u.id, (select t.id from :SCHEMA.tasks t
                                       where t.key = u.key
                                         and t.state in ('pending', 'ready', 'running', 'retrying')
                                       limit 1)) order by u.ord)
      into ids
      from unnest(ids, keys) with ordinality as u(id, key, ord);
    exit when array_position(ids, null) is null;
  end loop;
  if array_position(ids, null) is not null then
    raise exception using errcode = '40001',
      message = 'pgjobs: dedup keys kept changing hands while enqueueing: retry the enqueue';
  end if;
  return query select u.id from unnest(ids) with ordinality as u(id, ord) order by u.ord;
end
$$;

revoke execute on function :SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[], bigint[]) from public;

do $$
declare
  g record;
begin
  for g in select role_name from pgjobs_enqueue_many_grantees loop
    execute format('grant execute on function :SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[], bigint[]) to %I', g.role_name);
  end loop;
end
$$;
drop table pg_temp.pgjobs_enqueue_many_grantees;

-- The producer's grant names the function by its new signature.
create or replace function :SCHEMA.grant_producer(role_name name) returns void
language plpgsql as $$
begin
  execute format('grant usage on schema :SCHEMA to %I', role_name);
  execute format('grant select on :SCHEMA.tasks, :SCHEMA.chords, :SCHEMA.chord_progress, :SCHEMA.schedules, :SCHEMA.workers to %I', role_name);
  -- AsyncResult.get() registers what it waits on.
  execute format('grant select, insert, update, delete on :SCHEMA.result_waiters to %I', role_name);
  execute format('grant execute on function :SCHEMA.enqueue(text, jsonb, text, integer, timestamptz, interval, integer, text, jsonb, bigint), '
                 ':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[], bigint[]), '
                 ':SCHEMA.apply_canvas(jsonb, bigint, jsonb), :SCHEMA.notify_waiters(bigint[]), :SCHEMA.wait_check(bigint[]) to %I', role_name);
end
$$;
