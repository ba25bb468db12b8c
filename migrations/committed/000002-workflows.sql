--! Previous: sha1:a34e9b8f2046a4fb615e7ee89d1a7cac745c778f
--! Hash: sha1:79c17142b6b8f33732b4f8ab743c452ca418e24d
--! Message: workflows

-- Workflows: chains, groups and chords applied by SQL, and the trigger that moves them along.
--
-- A canvas is JSON (docs/sql.md, "Canvas JSON"):
--   {"t":"sig","id":N,"name":..,"args":[..],"queue":..,"priority":..,"max_attempts":..,
--    "timeout_ms":..,"countdown_ms":..,"immutable":false,"errbacks":[sig..]}
--   {"t":"chain","steps":[node..],"errbacks":[..]}
--   {"t":"group","group_id":uuid,"members":[node..],"errbacks":[..]}
--   {"t":"chord","chord_id":uuid,"header":[node..],"body":node,"errbacks":[..]}
-- canvas_assign_ids gives every signature its task id up front, so a chain's last step or a
-- chord's callback has an id (and a waitable result) before the task exists. What runs later
-- (a chain's remaining steps, a chord's callback) waits in the `workflow` column of the task
-- before it, or in the chord's row, and is applied in the transaction that records that task's
-- success: a crash between steps can neither lose nor duplicate the hand-over.

-- Fill in task ids and group/chord ids; returns the canvas with ids. Errbacks get no id: they
-- may run once per failed member (group) and take a fresh id each time.
create function :SCHEMA.canvas_assign_ids(node jsonb) returns jsonb
language plpgsql as $$
declare
  t text := node->>'t';
  out jsonb := node;
  i integer;
  arr jsonb;
begin
  if t = 'sig' then
    if node->'id' is null or node->'id' = 'null'::jsonb then
      out := jsonb_set(out, '{id}', to_jsonb(nextval(':SCHEMA.tasks_id_seq'::regclass)::text));
    end if;
  elsif t = 'chain' or t = 'group' then
    arr := '[]';
    for i in 0 .. jsonb_array_length(node->case when t = 'chain' then 'steps' else 'members' end) - 1 loop
      arr := arr || jsonb_build_array(:SCHEMA.canvas_assign_ids(node->case when t = 'chain' then 'steps' else 'members' end->i));
    end loop;
    out := jsonb_set(out, array[case when t = 'chain' then 'steps' else 'members' end], arr);
    if t = 'group' and (node->'group_id' is null or node->'group_id' = 'null'::jsonb) then
      out := jsonb_set(out, '{group_id}', to_jsonb(gen_random_uuid()::text));
    end if;
  elsif t = 'chord' then
    arr := '[]';
    for i in 0 .. jsonb_array_length(node->'header') - 1 loop
      arr := arr || jsonb_build_array(:SCHEMA.canvas_assign_ids(node->'header'->i));
    end loop;
    out := jsonb_set(out, '{header}', arr);
    out := jsonb_set(out, '{body}', :SCHEMA.canvas_assign_ids(node->'body'));
    if node->'chord_id' is null or node->'chord_id' = 'null'::jsonb then
      out := jsonb_set(out, '{chord_id}', to_jsonb(gen_random_uuid()::text));
    end if;
  else
    raise exception using errcode = '22023',
      message = format('pgjobs: canvas node of unknown type %L: use sig, chain, group or chord', t);
  end if;
  return out;
end
$$;

-- Apply (enqueue) a canvas node. prev/has_prev: the previous step's result, prepended to the
-- arguments of non-immutable signatures. cont: what follows once this node completes:
--   next      a node to apply with this node's result (a chain's remaining steps)
--   report    {"chord": uuid, "index": n}: the chord this node's completion counts towards
--   errbacks  errbacks inherited from enclosing chains
--   group_id  the group a signature belongs to
create function :SCHEMA.canvas_apply(node jsonb, prev jsonb, has_prev boolean, parent bigint, hdrs jsonb, cont jsonb)
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
    for i in 0 .. jsonb_array_length(node->'members') - 1 loop
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
    for i in 0 .. n - 1 loop
      perform :SCHEMA.canvas_apply(node->'header'->i, prev, has_prev, parent, hdrs,
        jsonb_build_object('report', jsonb_build_object('chord', node->>'chord_id', 'index', i), 'group_id', gid));
    end loop;
  else
    raise exception using errcode = '22023',
      message = format('pgjobs: canvas node of unknown type %L: use sig, chain, group or chord', t);
  end if;
end
$$;

-- The id of the first task a node enqueues (a chord's callback_id).
create function :SCHEMA.canvas_first_id(node jsonb) returns bigint
language sql immutable as $$
  select case node->>'t'
    when 'sig' then (node->>'id')::bigint
    when 'chain' then :SCHEMA.canvas_first_id(node->'steps'->0)
    when 'group' then :SCHEMA.canvas_first_id(node->'members'->0)
    when 'chord' then :SCHEMA.canvas_first_id(node->'header'->0)
  end
$$;

-- Record as cancelled every task a node would have enqueued, so whoever waits on them (a
-- chain's last step, a chord's callback) learns why they will never run.
create function :SCHEMA.canvas_cancel(node jsonb, reason jsonb, parent bigint, hdrs jsonb)
returns void
language plpgsql as $$
declare
  t text := node->>'t';
  i integer;
begin
  if node is null or node = 'null'::jsonb then
    return;
  elsif t = 'sig' then
    insert into :SCHEMA.tasks (id, name, args, queue, state, finished_at, error, headers, parent_id)
    values ((node->>'id')::bigint, node->>'name', coalesce(node->'args', '[]'),
            coalesce(node->>'queue', 'default'), 'cancelled', now(), reason, coalesce(hdrs, '{}'), parent)
    on conflict (id) do nothing;
    perform :SCHEMA.notify_waiters(array[(node->>'id')::bigint]);
  elsif t = 'chain' or t = 'group' then
    for i in 0 .. jsonb_array_length(node->case when t = 'chain' then 'steps' else 'members' end) - 1 loop
      perform :SCHEMA.canvas_cancel(node->case when t = 'chain' then 'steps' else 'members' end->i, reason, parent, hdrs);
    end loop;
  elsif t = 'chord' then
    for i in 0 .. jsonb_array_length(node->'header') - 1 loop
      perform :SCHEMA.canvas_cancel(node->'header'->i, reason, parent, hdrs);
    end loop;
    perform :SCHEMA.canvas_cancel(node->'body', reason, parent, hdrs);
  end if;
end
$$;

-- A chord member failed for good (or was cancelled): the chord fails once. Its callback is
-- recorded as cancelled with the member named, its error callbacks run once, and an enclosing
-- chord (if this chord's completion counted towards one) fails too.
create function :SCHEMA.chord_fail(cid uuid, member_id bigint, member_name text, member_error jsonb)
returns void
language plpgsql as $$
declare
  c record;
  reason jsonb;
  e jsonb;
  hdrs jsonb;
begin
  update :SCHEMA.chords
     set state = 'failed', failed = failed + 1, finished_at = now()
   where id = cid and state = 'waiting'
  returning * into c;
  if not found then
    update :SCHEMA.chords set failed = failed + 1 where id = cid;
    return;
  end if;
  hdrs := c.callback->'headers';
  reason := jsonb_build_object(
    'name', 'ChordMemberFailed',
    'message', format('chord %s did not run its callback: member %s (id %s) failed: %s: %s',
                      cid, member_name, member_id, member_error->>'name', member_error->>'message'),
    'member_id', member_id::text, 'member_name', member_name, 'member_error', member_error);
  perform :SCHEMA.canvas_cancel(c.callback->'node', reason, c.parent_id, hdrs);
  perform :SCHEMA.canvas_cancel(c.callback->'cont'->'next', reason, c.parent_id, hdrs);
  for e in select * from jsonb_array_elements(coalesce(c.callback->'errbacks', '[]')) loop
    perform :SCHEMA.canvas_apply(e,
      jsonb_build_object('id', member_id::text, 'name', member_name, 'error', member_error, 'chord_id', cid),
      true, c.parent_id, hdrs, '{}');
  end loop;
  if nullif(c.callback->'cont'->'report', 'null'::jsonb) is not null then
    perform :SCHEMA.chord_fail((c.callback->'cont'->'report'->>'chord')::uuid, member_id, member_name, member_error);
  end if;
end
$$;

-- After tasks change state: move workflows along. Statement-level with transition tables, so
-- that one statement finishing members of several chords takes the chord rows' locks in chord
-- id order (no deadlock between two workers finishing members of the same chords), and so a
-- chord is decremented once per statement, not once per member. A statement that touches no
-- workflow task returns after one scan of its own rows.
create function :SCHEMA.tasks_workflow_step() returns trigger
language plpgsql as $$
declare
  r record;
  c record;
  e jsonb;
  results jsonb;
  fired boolean;
  cparent bigint;
begin
  if not exists (select 1 from new_rows n where n.workflow is not null
                   and n.state in ('succeeded', 'failed', 'cancelled')) then
    return null;
  end if;

  -- Successes: chain hand-over (apply the next step with this result) ...
  for r in
    select n.id, n.result, n.headers, n.workflow
      from new_rows n join old_rows o on o.id = n.id
     where n.state = 'succeeded' and o.state <> 'succeeded' and n.workflow ? 'next'
     order by n.id
  loop
    perform :SCHEMA.canvas_apply(r.workflow->'next', r.result, true, r.id, r.headers,
      jsonb_build_object('report', r.workflow->'report', 'errbacks', r.workflow->'inherit'));
  end loop;

  -- ... and chord counters, in chord id order, decremented by the number of members that
  -- succeeded in this statement. Only the transition into 'succeeded' counts, so a repeated or
  -- late acknowledgement (which changes no row) cannot decrement twice.
  for c in
    select n.chord_id, count(*)::integer as k
      from new_rows n join old_rows o on o.id = n.id
     where n.state = 'succeeded' and o.state <> 'succeeded' and n.chord_id is not null
     group by n.chord_id
     order by n.chord_id
  loop
    update :SCHEMA.chords ch
       set remaining = ch.remaining - c.k,
           state = case when ch.remaining - c.k = 0 then 'fired' else ch.state end,
           finished_at = case when ch.remaining - c.k = 0 then now() end,
           callback_id = case when ch.remaining - c.k = 0 then :SCHEMA.canvas_first_id(ch.callback->'node') end
     where ch.id = c.chord_id and ch.state = 'waiting'
    returning ch.remaining = 0, ch.callback, ch.parent_id into fired, e, cparent;
    if found and fired then
      select jsonb_agg(t.result order by (t.workflow->>'chord_index')::integer) into results
        from :SCHEMA.tasks t
       where t.chord_id = c.chord_id and t.state = 'succeeded';
      perform :SCHEMA.canvas_apply(e->'node', results, true, cparent, e->'headers', e->'cont');
    end if;
  end loop;

  -- Failures for good and cancellations: error callbacks run, the rest of the chain is recorded
  -- as cancelled with the failed step named, and a chord this task counted towards fails.
  for r in
    select n.id, n.name, n.state, n.error, n.headers, n.parent_id, n.workflow, n.chord_id
      from new_rows n join old_rows o on o.id = n.id
     where n.state in ('failed', 'cancelled') and o.state not in ('failed', 'cancelled')
       and n.workflow is not null
     order by coalesce(n.chord_id, (n.workflow->'report'->>'chord')::uuid), n.id
  loop
    for e in select * from jsonb_array_elements(coalesce(r.workflow->'errbacks', '[]')) loop
      perform :SCHEMA.canvas_apply(e, jsonb_build_object('id', r.id::text, 'name', r.name, 'error', r.error),
        true, r.id, r.headers, '{}');
    end loop;
    if r.workflow ? 'next' then
      perform :SCHEMA.canvas_cancel(r.workflow->'next',
        jsonb_build_object('name', 'UpstreamFailed',
          'message', format('step %s (id %s) %s: %s: %s', r.name, r.id, r.state, r.error->>'name', r.error->>'message'),
          'failed_id', r.id::text, 'failed_name', r.name, 'failed_error', r.error),
        r.id, r.headers);
    end if;
    if r.chord_id is not null then
      perform :SCHEMA.chord_fail(r.chord_id, r.id, r.name, r.error);
    elsif r.workflow ? 'report' then
      perform :SCHEMA.chord_fail((r.workflow->'report'->>'chord')::uuid, r.id, r.name, r.error);
    end if;
  end loop;
  return null;
end
$$;

create trigger tasks_workflow_step
  after update on :SCHEMA.tasks
  referencing old table as old_rows new table as new_rows
  for each statement execute function :SCHEMA.tasks_workflow_step();

-- The write API for canvases, for every language: assign ids, enqueue what can run now, and
-- return the canvas with its ids (to build result handles from).
create function :SCHEMA.apply_canvas(canvas jsonb, parent_id bigint default null, headers jsonb default '{}')
returns jsonb
language plpgsql as $$
declare
  withids jsonb := :SCHEMA.canvas_assign_ids(canvas);
begin
  perform :SCHEMA.canvas_apply(withids, null, false, parent_id, headers, '{}');
  return withids;
end
$$;

-- Each chord's progress, for SQL users and the dashboard.
create view :SCHEMA.chord_progress as
select c.id as chord_id, c.group_id, c.total, c.total - c.remaining as completed, c.remaining,
       c.failed, c.state, c.callback_id, c.parent_id, c.created_at, c.finished_at
  from :SCHEMA.chords c;
