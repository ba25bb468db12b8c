--! Previous: sha1:4da15fcde8d0874f5873387b4689c5ce351ab325
--! Hash: sha1:9881f6fbb33d873cecd7ee0ada7319ffcabe9073
--! Message: faster enqueue and canvas

-- Enqueue: a plain insert when no dedup key is given.
--
-- Measured (psql, 1,000 rows per call, loaded machine): enqueue_many ~100 ms against ~40 ms for
-- a bare INSERT ... SELECT of the same rows; ON CONFLICT turns every row into a speculative
-- insertion even when no row has a key.
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
  workflows     jsonb[] default null
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
  -- Validate before writing anything, with a message that names the task and the value.
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

  -- Without dedup keys (the common case) a plain insert: ON CONFLICT would make every row a
  -- speculative insertion (an extra WAL record each) for nothing. Ids are drawn in input order,
  -- so the result comes back in input order.
  if keys is null or cardinality(array_remove(keys, null)) = 0 then
    return query
    with input as materialized (
      select nextval(':SCHEMA.tasks_id_seq'::regclass) as id, u.*
      from unnest(names, args, queues, priorities, run_ats, max_attempts, headers,
                  parent_ids, group_ids, chord_ids, timeouts_ms, workflows)
        with ordinality as u(name, args, queue, priority, run_at, max_attempts, headers,
                             parent_id, group_id, chord_id, timeout_ms, workflow, ord)
    ),
    ins as (
      insert into :SCHEMA.tasks as t (id, name, args, queue, priority, run_at, state, max_attempts,
                                      headers, parent_id, group_id, chord_id, timeout_ms, workflow)
      select i.id, i.name, coalesce(i.args, '[]'), coalesce(i.queue, 'default'), coalesce(i.priority, 0),
             coalesce(i.run_at, now()),
             case when i.run_at > now() then 'pending' else 'ready' end:::SCHEMA.task_state,
             coalesce(i.max_attempts, 4), coalesce(i.headers, '{}'), i.parent_id, i.group_id,
             i.chord_id, i.timeout_ms, i.workflow
      from input i order by i.ord
    )
    select i.id from input i order by i.ord;
    return;
  end if;

  -- Ids are drawn in input order, so the result can be returned in input order.
  with input as (
    select nextval(':SCHEMA.tasks_id_seq'::regclass) as id, u.*
    from unnest(names, args, queues, priorities, run_ats, max_attempts, keys, headers,
                parent_ids, group_ids, chord_ids, timeouts_ms, workflows)
      with ordinality as u(name, args, queue, priority, run_at, max_attempts, key, headers,
                           parent_id, group_id, chord_id, timeout_ms, workflow, ord)
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
  select array_agg(case when ins.id is not null then i.id end order by i.ord)
    into ids
  from input i left join ins on ins.id = i.id;

  -- Rows skipped for their dedup key take the id of the unfinished task holding that key. A new
  -- statement sees a holder that a concurrent transaction committed while we waited on it.
  return query
  select coalesce(u.id, (select t.id from :SCHEMA.tasks t
                          where t.key = u.key
                            and t.state in ('pending', 'ready', 'running', 'retrying')
                          limit 1))
  from unnest(ids, keys) with ordinality as u(id, key, ord)
  order by u.ord;
end
$$;


-- The signature members of a group or chord header, inserted in one statement (the others —
-- chains, nested chords — go through canvas_apply one by one). Measured: a chord of 1,000
-- signatures took ~600 ms to apply one INSERT at a time. It runs with its caller's rights (the
-- caller needs INSERT on tasks), so it stays executable by PUBLIC like canvas_apply's callers need.
create or replace function :SCHEMA.canvas_insert_members(members jsonb, prev jsonb, has_prev boolean, parent bigint,
                                             hdrs jsonb, gid uuid, chord uuid, inherited jsonb)
returns void
language sql as $$
  insert into :SCHEMA.tasks (id, name, args, queue, priority, max_attempts, timeout_ms, run_at,
                            state, headers, parent_id, group_id, chord_id, workflow)
  select coalesce((m->>'id')::bigint, nextval(':SCHEMA.tasks_id_seq'::regclass)),
         m->>'name',
         case when has_prev and not coalesce((m->>'immutable')::boolean, false)
              then jsonb_build_array(prev) || coalesce(m->'args', '[]') else coalesce(m->'args', '[]') end,
         coalesce(m->>'queue', 'default'), coalesce((m->>'priority')::smallint, 0),
         coalesce((m->>'max_attempts')::smallint, 4), (m->>'timeout_ms')::integer,
         now() + coalesce((m->>'countdown_ms')::bigint, 0) * interval '1 millisecond',
         case when coalesce((m->>'countdown_ms')::bigint, 0) > 0 then 'pending' else 'ready' end:::SCHEMA.task_state,
         coalesce(hdrs, '{}'), parent, gid, chord,
         nullif(jsonb_strip_nulls(jsonb_build_object(
           'chord_index', case when chord is not null then e.i - 1 end,
           'errbacks', nullif(coalesce(inherited, '[]') || coalesce(nullif(m->'errbacks', 'null'::jsonb), '[]'), '[]'::jsonb))),
           '{}'::jsonb)
    from jsonb_array_elements(members) with ordinality as e(m, i)
   where m->>'t' = 'sig'
   order by e.i
$$;

create or replace function :SCHEMA.canvas_apply(node jsonb, prev jsonb, has_prev boolean, parent bigint, hdrs jsonb, cont jsonb)
returns void
language plpgsql as $$
declare
  t text := node->>'t';
  inherited jsonb := coalesce(nullif(cont->'errbacks', 'null'::jsonb), '[]');
  own jsonb := coalesce(nullif(node->'errbacks', 'null'::jsonb), '[]');
  nxt jsonb := nullif(cont->'next', 'null'::jsonb);
  report jsonb := nullif(cont->'report', 'null'::jsonb);
  args jsonb;
  wf jsonb;
  steps jsonb;
  n integer;
  i integer;
  gid uuid;
begin
  if t = 'sig' then
    args := coalesce(node->'args', '[]');
    if has_prev and not coalesce((node->>'immutable')::boolean, false) then
      args := jsonb_build_array(prev) || args;
    end if;
    wf := jsonb_strip_nulls(jsonb_build_object(
      'next', nxt,
      'report', case when nxt is not null then report end,
      'chord_index', case when nxt is null then report->'index' end,
      'errbacks', nullif(inherited || own, '[]'::jsonb),
      'inherit', case when nxt is not null then nullif(inherited, '[]'::jsonb) end));
    insert into :SCHEMA.tasks (id, name, args, queue, priority, max_attempts, timeout_ms, run_at,
                              state, headers, parent_id, group_id, chord_id, workflow)
    values (coalesce((node->>'id')::bigint, nextval(':SCHEMA.tasks_id_seq'::regclass)),
            node->>'name', args, coalesce(node->>'queue', 'default'),
            coalesce((node->>'priority')::smallint, 0), coalesce((node->>'max_attempts')::smallint, 4),
            (node->>'timeout_ms')::integer,
            now() + coalesce((node->>'countdown_ms')::bigint, 0) * interval '1 millisecond',
            case when coalesce((node->>'countdown_ms')::bigint, 0) > 0 then 'pending' else 'ready' end:::SCHEMA.task_state,
            coalesce(hdrs, '{}'), parent, (cont->>'group_id')::uuid,
            case when nxt is null then (report->>'chord')::uuid end,
            nullif(wf, '{}'::jsonb));
  elsif t = 'chain' then
    steps := node->'steps';
    n := jsonb_array_length(steps);
    if nxt is not null then
      steps := steps || jsonb_build_array(nxt);
      n := n + 1;
    end if;
    if n = 0 then
      return;
    elsif n = 1 then
      perform :SCHEMA.canvas_apply(steps->0, prev, has_prev, parent, hdrs,
        jsonb_build_object('report', report, 'errbacks', inherited || own, 'group_id', cont->'group_id'));
    else
      perform :SCHEMA.canvas_apply(steps->0, prev, has_prev, parent, hdrs,
        jsonb_build_object('next', jsonb_build_object('t', 'chain', 'steps', steps - 0),
                           'report', report, 'errbacks', inherited || own, 'group_id', cont->'group_id'));
    end if;
  elsif t = 'group' then
    if nxt is not null or report is not null then
      raise exception using errcode = '22023',
        message = 'pgjobs: a group followed by a step, or inside a chord header, must be written as a chord (the TypeScript client does this for you)';
    end if;
    gid := (node->>'group_id')::uuid;
    perform :SCHEMA.canvas_insert_members(node->'members', prev, has_prev, parent, hdrs, gid, null, inherited || own);
    for i in 0 .. jsonb_array_length(node->'members') - 1 loop
      continue when node->'members'->i->>'t' = 'sig';
      perform :SCHEMA.canvas_apply(node->'members'->i, prev, has_prev, parent, hdrs,
        jsonb_build_object('errbacks', inherited || own, 'group_id', gid));
    end loop;
  elsif t = 'chord' then
    n := jsonb_array_length(node->'header');
    gid := gen_random_uuid();
    insert into :SCHEMA.chords (id, group_id, total, remaining, callback, parent_id)
    values ((node->>'chord_id')::uuid, gid, n, n,
            jsonb_build_object('node', node->'body', 'headers', hdrs,
                               'cont', jsonb_build_object('next', nxt, 'report', report, 'errbacks', inherited),
                               'errbacks', inherited || own),
            parent);
    if n = 0 then
      -- Celery's rule: an empty chord calls its body at once, with an empty list.
      update :SCHEMA.chords set state = 'fired', finished_at = now(),
             callback_id = :SCHEMA.canvas_first_id(node->'body')
       where id = (node->>'chord_id')::uuid;
      perform :SCHEMA.canvas_apply(node->'body', '[]', true, parent, hdrs,
        jsonb_build_object('next', nxt, 'report', report, 'errbacks', inherited));
      return;
    end if;
    perform :SCHEMA.canvas_insert_members(node->'header', prev, has_prev, parent, hdrs, gid, (node->>'chord_id')::uuid, '[]');
    for i in 0 .. n - 1 loop
      continue when node->'header'->i->>'t' = 'sig';
      perform :SCHEMA.canvas_apply(node->'header'->i, prev, has_prev, parent, hdrs,
        jsonb_build_object('report', jsonb_build_object('chord', node->>'chord_id', 'index', i), 'group_id', gid));
    end loop;
  else
    raise exception using errcode = '22023',
      message = format('pgjobs: canvas node of unknown type %L: use sig, chain, group or chord', t);
  end if;
end
$$;
