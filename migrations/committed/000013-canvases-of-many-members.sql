--! Previous: sha1:e3969d8468ac573fcea14186886dc674c84f674a
--! Hash: sha1:558ca7c1d9d189ac3641a489f29a3c72e2cde2fe
--! Message: canvases of many members

-- Canvases of many members, applied in a fraction of the time (a chord of 1,000 no-op members:
-- apply_canvas took ~60 ms of server time, a plain enqueue of 1,000 ~12 ms).
--
-- canvas_apply walked a group's members and a chord's header by index to find the ones that are
-- not plain signatures (those were inserted all at once already): `node->'header'->i` copies the
-- whole header on every step, so the walk was quadratic in the number of members. It now selects
-- just those members. canvas_check called itself once per member (a plpgsql call, a formatted
-- path and a regex each); an array whose members are all plain signatures without error
-- callbacks, and all valid, is now checked by one query, and only an array with something else
-- in it (or something wrong, to be named with its path) is walked member by member.

-- Also: chord_progress.completed (total - remaining) stopped counting when the chord failed, as
-- the trigger decremented only waiting chords; a failed chord now keeps counting its members'
-- successes (it still never fires).

-- True when every element of `members` is a valid signature node without error callbacks: what
-- canvas_check would accept member by member, checked at once (each queue name once).
create or replace function :SCHEMA.canvas_plain_sigs(members jsonb) returns boolean
language sql immutable as $$
  select not exists (
           select from jsonb_array_elements(members) e
            where e->>'t' is distinct from 'sig'
               or jsonb_typeof(e) <> 'object'
               or coalesce(nullif(e->'errbacks', 'null'::jsonb), '[]'::jsonb) <> '[]'::jsonb
               or e->>'name' is null or length(e->>'name') not between 1 and 200
               or (e->'args' is not null and jsonb_typeof(e->'args') <> 'array')
               or (e->>'priority')::numeric not between -100 and 100
               or (e->>'max_attempts')::numeric not between 1 and 1000)
     and not exists (
           select from (select distinct e->>'queue' as q from jsonb_array_elements(members) e) d
            where d.q !~ '^[A-Za-z0-9_.:-]{1,63}$')
$$;
revoke execute on function :SCHEMA.canvas_plain_sigs(jsonb) from public;

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
    if not :SCHEMA.canvas_plain_sigs(node->k) then
      i := 0;
      for e in select * from jsonb_array_elements(node->k) loop
        perform :SCHEMA.canvas_check(e, format('%s.%s[%s]', path, k, i));
        i := i + 1;
      end loop;
    end if;
  elsif t = 'chord' then
    if jsonb_typeof(node->'header') is distinct from 'array' or node->'body' is null then
      raise exception using errcode = '22023', message = format('pgjobs: %s: a chord needs "header": [node, ...] and "body": node', path);
    end if;
    if not :SCHEMA.canvas_plain_sigs(node->'header') then
      i := 0;
      for e in select * from jsonb_array_elements(node->'header') loop
        perform :SCHEMA.canvas_check(e, format('%s.header[%s]', path, i));
        i := i + 1;
      end loop;
    end if;
    perform :SCHEMA.canvas_check(node->'body', path || '.body');
  else
    raise exception using errcode = '22023', message = format('pgjobs: %s: canvas node of unknown type %L: use sig, chain, group or chord', path, t);
  end if;
end
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
  member jsonb;
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
    for member in select e from jsonb_array_elements(node->'members') e where e->>'t' <> 'sig' loop
      perform :SCHEMA.canvas_apply(member, prev, has_prev, parent, hdrs,
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
    for member, i in select e, x.i - 1 from jsonb_array_elements(node->'header') with ordinality as x(e, i) where e->>'t' <> 'sig' loop
      perform :SCHEMA.canvas_apply(member, prev, has_prev, parent, hdrs,
        jsonb_build_object('report', jsonb_build_object('chord', node->>'chord_id', 'index', i), 'group_id', gid));
    end loop;
  else
    raise exception using errcode = '22023',
      message = format('pgjobs: canvas node of unknown type %L: use sig, chain, group or chord', t);
  end if;
end
$$;

create or replace function :SCHEMA.tasks_workflow_step() returns trigger
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
  -- late acknowledgement (which changes no row) cannot decrement twice. A failed chord keeps
  -- counting (so chord_progress.completed stays true to its members) but never fires.
  for c in
    select n.chord_id, count(*)::integer as k
      from new_rows n join old_rows o on o.id = n.id
     where n.state = 'succeeded' and o.state <> 'succeeded' and n.chord_id is not null
     group by n.chord_id
     order by n.chord_id
  loop
    update :SCHEMA.chords ch
       set remaining = ch.remaining - c.k,
           state = case when ch.state = 'waiting' and ch.remaining - c.k = 0 then 'fired' else ch.state end,
           finished_at = case when ch.state = 'waiting' and ch.remaining - c.k = 0 then now() else ch.finished_at end,
           callback_id = case when ch.state = 'waiting' and ch.remaining - c.k = 0
                              then :SCHEMA.canvas_first_id(ch.callback->'node') else ch.callback_id end
     where ch.id = c.chord_id and ch.state in ('waiting', 'failed')
    returning ch.state = 'fired', ch.callback, ch.parent_id into fired, e, cparent;
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
