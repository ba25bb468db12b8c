--! Previous: sha1:fbd68c27d368b303910f23ad692276436dfcd27e
--! Hash: sha1:1436020a0bc9e1deae3bddffc6b75da40f417ace
--! Message: workflow fixes

-- Workflow fixes from the issue 4 review, each backed by a test in test/workflows.test.ts or
-- test/workflows-faults.test.ts; and the highest task id issued, for result lookups.
--
-- 1. canvas_apply / canvas_insert_members: a hand-over that meets the 'cancelled' placeholder of
--    a step (left when an earlier step failed for good, and that step was then retried with
--    jobs.retry) re-arms it instead of raising unique_violation inside the worker's finish
--    statement, which the Finisher retries forever: the worker stops acknowledging everything.
-- 2. canvas_check + apply_canvas: validate every node up front (22023, nothing written), not at
--    hand-over time inside a worker's acknowledgement.
-- 3. canvas_apply (chord): the chord's own error callbacks also run when its callback fails for
--    good, as Celery's chord.link_error does (they already run once when a member fails).

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
  -- See canvas_apply: a never-run 'cancelled' placeholder (an earlier step failed, then was
  -- retried) becomes the real task; any other existing row means the hand-over already happened.
  on conflict (id) do update
     set name = excluded.name, args = excluded.args, queue = excluded.queue,
         priority = excluded.priority, max_attempts = excluded.max_attempts,
         timeout_ms = excluded.timeout_ms, run_at = excluded.run_at, state = excluded.state,
         headers = excluded.headers, parent_id = excluded.parent_id, group_id = excluded.group_id,
         chord_id = excluded.chord_id, workflow = excluded.workflow, attempts = 0,
         error = null, result = null, finished_at = null, started_at = null, worker_id = null
   where :SCHEMA.tasks.state = 'cancelled' and :SCHEMA.tasks.attempts = 0
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
            nullif(wf, '{}'::jsonb))
    -- A step recorded as cancelled when an earlier step failed for good, whose hand-over comes
    -- after all (that step was retried with jobs.retry): the placeholder never ran, so it becomes
    -- the real task. Without this the hand-over raises unique_violation inside the worker's
    -- finish statement, which the Finisher retries forever. Any other existing row means the
    -- hand-over already happened: change nothing.
    on conflict (id) do update
       set name = excluded.name, args = excluded.args, queue = excluded.queue,
           priority = excluded.priority, max_attempts = excluded.max_attempts,
           timeout_ms = excluded.timeout_ms, run_at = excluded.run_at, state = excluded.state,
           headers = excluded.headers, parent_id = excluded.parent_id, group_id = excluded.group_id,
           chord_id = excluded.chord_id, workflow = excluded.workflow, attempts = 0,
           error = null, result = null, finished_at = null, started_at = null, worker_id = null
     where :SCHEMA.tasks.state = 'cancelled' and :SCHEMA.tasks.attempts = 0;
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
            -- The chord's own error callbacks also guard its callback (Celery's chord.link_error
            -- links them to the body); chord_fail runs them once when a member fails.
            jsonb_build_object('node', case when own = '[]'::jsonb then node->'body'
                                            else jsonb_set(node->'body', '{errbacks}', coalesce(nullif(node->'body'->'errbacks', 'null'::jsonb), '[]') || own) end,
                               'headers', hdrs,
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

-- Validate a whole canvas before anything is written (SQLSTATE 22023, one line), so a bad step
-- deep in a chain is refused by apply_canvas, not met by the acknowledgement of the step before.
create or replace function :SCHEMA.canvas_check(node jsonb, path text default 'canvas') returns void
language plpgsql as $$
declare
  t text := node->>'t';
  k text;
  e jsonb;
  i integer := 0;
begin
  if jsonb_typeof(node) is distinct from 'object' then
    raise exception using errcode = '22023', message = format('pgjobs: %s is not a canvas node: give an object with "t"', path);
  end if;
  for e in select * from jsonb_array_elements(coalesce(nullif(node->'errbacks', 'null'::jsonb), '[]')) loop
    perform :SCHEMA.canvas_check(e, format('%s.errbacks[%s]', path, i));
    i := i + 1;
  end loop;
  if t = 'sig' then
    if node->>'name' is null or length(node->>'name') not between 1 and 200 then
      raise exception using errcode = '22023', message = format('pgjobs: %s has an invalid task name %L: give a name of 1 to 200 characters', path, node->>'name');
    elsif node->>'queue' is not null and node->>'queue' !~ '^[A-Za-z0-9_.:-]{1,63}$' then
      raise exception using errcode = '22023', message = format('pgjobs: %s (task %s): invalid queue name %L: use 1 to 63 letters, digits, "_", ".", ":" or "-"', path, node->>'name', node->>'queue');
    elsif node->'args' is not null and jsonb_typeof(node->'args') <> 'array' then
      raise exception using errcode = '22023', message = format('pgjobs: %s (task %s): args must be a JSON array, got %s', path, node->>'name', jsonb_typeof(node->'args'));
    elsif (node->>'priority')::numeric not between -100 and 100 then
      raise exception using errcode = '22023', message = format('pgjobs: %s (task %s): priority %s is out of range: use -100 to 100', path, node->>'name', node->>'priority');
    elsif (node->>'max_attempts')::numeric not between 1 and 1000 then
      raise exception using errcode = '22023', message = format('pgjobs: %s (task %s): max_attempts %s is out of range: use 1 to 1000', path, node->>'name', node->>'max_attempts');
    end if;
  elsif t in ('chain', 'group') then
    k := case when t = 'chain' then 'steps' else 'members' end;
    if jsonb_typeof(node->k) is distinct from 'array' then
      raise exception using errcode = '22023', message = format('pgjobs: %s: a %s needs "%s": [node, ...]', path, t, k);
    end if;
    i := 0;
    for e in select * from jsonb_array_elements(node->k) loop
      perform :SCHEMA.canvas_check(e, format('%s.%s[%s]', path, k, i));
      i := i + 1;
    end loop;
  elsif t = 'chord' then
    if jsonb_typeof(node->'header') is distinct from 'array' or node->'body' is null then
      raise exception using errcode = '22023', message = format('pgjobs: %s: a chord needs "header": [node, ...] and "body": node', path);
    end if;
    i := 0;
    for e in select * from jsonb_array_elements(node->'header') loop
      perform :SCHEMA.canvas_check(e, format('%s.header[%s]', path, i));
      i := i + 1;
    end loop;
    perform :SCHEMA.canvas_check(node->'body', path || '.body');
  else
    raise exception using errcode = '22023', message = format('pgjobs: %s: canvas node of unknown type %L: use sig, chain, group or chord', path, t);
  end if;
end
$$;

create or replace function :SCHEMA.apply_canvas(canvas jsonb, parent_id bigint default null, headers jsonb default '{}')
returns jsonb
language plpgsql
-- Re-stated: CREATE OR REPLACE resets what 000003 set.
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  withids jsonb;
begin
  perform :SCHEMA.canvas_check(canvas);
  withids := :SCHEMA.canvas_assign_ids(canvas);
  perform :SCHEMA.canvas_apply(withids, null, false, parent_id, headers, '{}');
  return withids;
end
$$;

-- The highest task id handed out so far. A result handle whose row is missing reads as pending
-- (Celery's rule for an unknown id) when its id is at most this — a workflow step or chord callback
-- whose id was assigned but whose task is not enqueued yet — and as "does not exist" above it.
-- SECURITY DEFINER: reading the sequence needs a privilege producers do not have.
create or replace function :SCHEMA.last_task_id() returns bigint
language sql stable
security definer set search_path = pg_catalog, pg_temp
as $$
  select last_value from :SCHEMA.tasks_id_seq
$$;
revoke execute on function :SCHEMA.last_task_id() from public;

create or replace function :SCHEMA.grant_producer(role_name name) returns void
language plpgsql as $$
begin
  execute format('grant usage on schema :SCHEMA to %I', role_name);
  execute format('grant select on :SCHEMA.tasks, :SCHEMA.chords, :SCHEMA.chord_progress, :SCHEMA.schedules, :SCHEMA.workers to %I', role_name);
  -- AsyncResult.get() registers what it waits on.
  execute format('grant select, insert, update, delete on :SCHEMA.result_waiters to %I', role_name);
  execute format('grant execute on function :SCHEMA.enqueue(text, jsonb, text, integer, timestamptz, interval, integer, text, jsonb, bigint), '
                 ':SCHEMA.enqueue_many(text[], jsonb[], text[], integer[], timestamptz[], integer[], text[], jsonb[], bigint[], uuid[], uuid[], integer[], jsonb[]), '
                 ':SCHEMA.apply_canvas(jsonb, bigint, jsonb), :SCHEMA.notify_waiters(bigint[]), :SCHEMA.wait_check(bigint[]), :SCHEMA.last_task_id() to %I', role_name);
end
$$;
