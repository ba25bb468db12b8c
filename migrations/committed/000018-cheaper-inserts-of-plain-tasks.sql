--! Previous: sha1:8b6fbcb0a3c237aa7c2e456be4a6dc1c221ee0c5
--! Hash: sha1:1af7b60e5c186990169e556224035ff17040fe97
--! Message: Cheaper inserts of plain tasks

-- Cheaper inserts of plain tasks: checks that skip their costly part for the default queue and
-- names of up to 200 bytes, and enqueue_many_json inserting names and args alone when that is all
-- a batch sets.
--
-- tasks_queue_check ran a regular expression for every inserted row. The default queue, which
-- most tasks use, is now accepted by comparison first; any other name is checked as before.
-- tasks_name_check counted the characters of every name; it now compares the byte length first
-- (constant time) and counts characters only for names over 200 bytes. Both accept exactly what
-- they accepted (a name of 1 to 200 bytes has 1 to 200 characters), and keep their names, so a
-- direct INSERT that breaks one is refused with the same message.
--
-- NOT VALID: every existing row passed the old, equivalent checks, so there is no table scan under
-- the ACCESS EXCLUSIVE lock this takes; new and updated rows are checked as before.
--
-- Measured on the real server: one connection, 50 statements of the client's shape (1,000 tasks
-- of the default queue each) into an emptied table per round, 9 rounds interleaved across
-- databases that differ only in the change named; medians, rounds spread about 5%:
--
--   | schema                                                          | ms per 50 statements |
--   |-----------------------------------------------------------------|----------------------|
--   | before this migration                                           | 240                  |
--   | the checks                                                      | 225                  |
--   | enqueue_many_json inserting names and args alone                | 224                  |
--   | both (this migration)                                           | 213                  |
--   | for scale: the old function, no queue check at all              | 217                  |

-- Weighed and left:
-- - enqueue_many_json columns given as one value for every task (the names of a batch, nearly
--   always one name): 243 ms, no gain worth a second way to call it.
-- - tasks_ready_idx keyed on hashtext(queue) instead of queue (fixed-width keys, so an insert's
--   key comparisons stop walking each index tuple from its start: 3% of a batch, 6% without the
--   queue included for index-only counts). Claims must then say `hashtext(queue) = hashtext($1)
--   and queue = $1`; on a table not analyzed yet the planner multiplies the two clauses' default
--   selectivities, expects one row, and sorts the whole queue instead of reading the index in
--   order: a claim of 50 from 1,000,000 ready tasks took 482 ms (bench/explain.ts), where the
--   ordered index scan takes well under a millisecond.

alter table :SCHEMA.tasks drop constraint tasks_queue_check;
alter table :SCHEMA.tasks add constraint tasks_queue_check
  check (queue = 'default' or (queue ~ '^[A-Za-z0-9_.:-]+$' and length(queue) <= 63)) not valid;
alter table :SCHEMA.tasks drop constraint tasks_name_check;
alter table :SCHEMA.tasks add constraint tasks_name_check
  check (octet_length(name) between 1 and 200 or length(name) between 1 and 200) not valid;

-- enqueue_many_json (migration 000017) for a batch that sets only names and args: an INSERT of
-- those two columns, the table's defaults (the same as the function's) doing the rest. The
-- general INSERT evaluates a coalesce per column and row, eleven of them to a default here.
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

  -- Names and args alone (a batch of plain signatures): the table's defaults are the columns'
  -- defaults, so the row gives only those two instead of evaluating eleven defaults per row.
  if queues is null and priorities is null and run_ats is null and max_attempts is null and headers is null
     and parent_ids is null and group_ids is null and chord_ids is null and timeouts_ms is null
     and workflows is null then
    with ins as (
      insert into :SCHEMA.tasks as t (name, args)
      select names->>i, coalesce(nullif(args->i, 'null'), '[]')
        from generate_series(0, n - 1) as i
      returning t.id
    )
    select string_agg(ins.id::text, ',' order by ins.id) into ids from ins;
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
