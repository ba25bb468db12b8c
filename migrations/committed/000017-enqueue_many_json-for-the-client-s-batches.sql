--! Previous: sha1:6a6a15ebf22941034931fb4b594499ea566798b4
--! Hash: sha1:8b6fbcb0a3c237aa7c2e456be4a6dc1c221ee0c5
--! Message: enqueue_many_json for the client's batches

-- enqueue_many_json: the TypeScript client's batch enqueue, every column one JSON array.
--
-- The client's statement turned its JSON documents (args, headers, workflows) into jsonb[] for
-- enqueue_many (array_agg over jsonb_array_elements), which unnested them again, checked every
-- array in a pass of its own and returned the ids as a result set that the statement sorted and
-- aggregated. This function reads each column's JSON array by position (`col->>i`, constant time
-- per element) in one INSERT ... SELECT over generate_series, and returns the ids as one text.
-- The other columns travel as JSON arrays too: node-postgres builds a text[] or int[] parameter by
-- escaping every element into an array literal (0.3 ms of client CPU per 1,000 names), where
-- JSON.stringify does it natively.
--
-- Server instructions per 1,000-row statement of the client's shape (bench/server-instructions.sh:
-- callgrind on a single-user backend, so the same count on every run, where times here swing
-- 2-3x): the old statement 71.7 M, this function 62.4 M (64.6 M with a queue name per row), a
-- bare INSERT ... SELECT of the same names and args 58.9 M.
--
-- Values are not checked one by one here: the client has checked them, and the table's CHECK
-- constraints refuse a bad row all the same (with Postgres's message, which names the
-- constraint). SQL callers should call enqueue_many, whose messages name the task and the value.
-- Dedup keys and delays take enqueue_many's path.
--
-- Rows are inserted in generate_series order (a function scan feeding the INSERT: nothing
-- reorders it) and draw their ids in that order, so ascending ids are input order.
create or replace function :SCHEMA.enqueue_many_json(
  names         jsonb,
  args          jsonb default null,
  queues        jsonb default null,
  priorities    jsonb default null,
  run_ats       jsonb default null,
  max_attempts  jsonb default null,
  keys          jsonb default null,
  headers       jsonb default null,
  parent_ids    jsonb default null,
  group_ids     jsonb default null,
  chord_ids     jsonb default null,
  timeouts_ms   jsonb default null,
  workflows     jsonb default null,
  delays_ms     jsonb default null
) returns text
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  n integer := jsonb_array_length(names);
  ids text;
begin
  if coalesce(jsonb_array_length(args), n) <> n or coalesce(jsonb_array_length(queues), n) <> n
     or coalesce(jsonb_array_length(priorities), n) <> n or coalesce(jsonb_array_length(run_ats), n) <> n
     or coalesce(jsonb_array_length(max_attempts), n) <> n or coalesce(jsonb_array_length(keys), n) <> n
     or coalesce(jsonb_array_length(headers), n) <> n or coalesce(jsonb_array_length(parent_ids), n) <> n
     or coalesce(jsonb_array_length(group_ids), n) <> n or coalesce(jsonb_array_length(chord_ids), n) <> n
     or coalesce(jsonb_array_length(timeouts_ms), n) <> n or coalesce(jsonb_array_length(workflows), n) <> n
     or coalesce(jsonb_array_length(delays_ms), n) <> n then
    raise exception using errcode = '22023',
      message = format('pgjobs: enqueue_many_json got arrays of different lengths (%s names): pass one element per task in every array', n);
  end if;

  if keys is not null or delays_ms is not null then
    select string_agg(e.id::text, ',' order by e.o) into ids
      from :SCHEMA.enqueue_many(
        array(select names->>i from generate_series(0, n - 1) i),
        array(select nullif(args->i, 'null') from generate_series(0, n - 1) i),
        array(select queues->>i from generate_series(0, n - 1) i),
        array(select (priorities->>i)::integer from generate_series(0, n - 1) i),
        array(select (run_ats->>i)::timestamptz from generate_series(0, n - 1) i),
        array(select (max_attempts->>i)::integer from generate_series(0, n - 1) i),
        array(select keys->>i from generate_series(0, n - 1) i),
        array(select nullif(headers->i, 'null') from generate_series(0, n - 1) i),
        array(select (parent_ids->>i)::bigint from generate_series(0, n - 1) i),
        array(select (group_ids->>i)::uuid from generate_series(0, n - 1) i),
        array(select (chord_ids->>i)::uuid from generate_series(0, n - 1) i),
        array(select (timeouts_ms->>i)::integer from generate_series(0, n - 1) i),
        array(select nullif(workflows->i, 'null') from generate_series(0, n - 1) i),
        array(select (delays_ms->>i)::bigint from generate_series(0, n - 1) i)) with ordinality as e(id, o);
    return ids;
  end if;

  -- A missing array, or a JSON null in one, is the column's default.
  with ins as (
    insert into :SCHEMA.tasks as t (name, args, queue, priority, run_at, state, max_attempts,
                                    headers, parent_id, group_id, chord_id, timeout_ms, workflow)
    select names->>i, coalesce(nullif(args->i, 'null'), '[]'), coalesce(queues->>i, 'default'),
           coalesce((priorities->>i)::integer, 0), coalesce((run_ats->>i)::timestamptz, now()),
           case when (run_ats->>i)::timestamptz > now() then 'pending' else 'ready' end:::SCHEMA.task_state,
           coalesce((max_attempts->>i)::integer, 4), coalesce(nullif(headers->i, 'null'), '{}'),
           (parent_ids->>i)::bigint, (group_ids->>i)::uuid, (chord_ids->>i)::uuid,
           (timeouts_ms->>i)::integer, nullif(workflows->i, 'null')
      from generate_series(0, n - 1) as i
    returning t.id
  )
  select string_agg(ins.id::text, ',' order by ins.id) into ids from ins;
  return ids;
end
$$;

revoke execute on function :SCHEMA.enqueue_many_json(jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb) from public;

-- The ready index never deduplicates: its keys end with the task's id, so no two are equal, and
-- the deduplication pass that runs whenever a leaf page fills only looks for duplicates to find
-- none (2 % of a 1,000-row enqueue's instructions, measured as above: 62.4 M, 60.5 M without it).
-- Changing it takes a SHARE UPDATE EXCLUSIVE lock on the index: enqueues and claims go on.
alter index :SCHEMA.tasks_ready_idx set (deduplicate_items = off);

-- Roles made before this migration: whoever may call enqueue_many (producers, workers) may call this.
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
    execute format('grant execute on function :SCHEMA.enqueue_many_json(jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb) to %I', g.role_name);
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
                 ':SCHEMA.enqueue_many_json(jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb, jsonb), '
                 ':SCHEMA.enqueue_handoff(text, jsonb, text, integer, timestamptz, integer, text, jsonb, bigint, uuid, uuid, integer, jsonb, bigint), '
                 ':SCHEMA.apply_canvas(jsonb, bigint, jsonb), :SCHEMA.notify_waiters(bigint[]), :SCHEMA.wait_check(bigint[]) to %I', role_name);
end
$$;
