--! Previous: sha1:9100994c386cea5b50e5b92d099fb527509d7944
--! Hash: sha1:967648eb1f14d1810424f21340eee080c420b865
--! Message: dashboard

-- The dashboard (issue 9): pausing queues, the audit log of operator actions, and the history of
-- each task's attempts.

-- Queues an operator paused or resumed; a queue without a row is not paused. task_claim_many
-- checks it (one primary-key probe of this small table per claim), so a paused queue's ready
-- tasks stay ready until it is resumed; tasks already running finish.
create table :SCHEMA.queues (
  name        text primary key,
  paused      boolean not null default false,
  changed_at  timestamptz not null default now(),
  changed_by  text,
  constraint queues_name_check check (name ~ '^[A-Za-z0-9_.:-]{1,63}$')
);
-- Every worker's claim reads it: roles granted with grant_worker() before this migration must
-- not start failing their claims. Whether a queue is paused is no secret.
grant select on :SCHEMA.queues to public;

-- Serves the dashboard's overview (failed tasks per queue, an index-only scan) and lists of
-- failed tasks. A task enters it only when it fails for good, so the hot path (ready -> running
-- -> succeeded) never touches it. Measured with 1,000,000 tasks: the overview's counts took
-- ~320 ms as one sequential scan, and a few milliseconds from the partial indexes.
create index tasks_failed_idx on :SCHEMA.tasks (queue, id) where state = 'failed';

-- Who did what, when: every action taken in the dashboard (retry, cancel, delete, pausing and
-- resuming queues and schedules), including the refused ones, with the reason.
create table :SCHEMA.audit (
  id       bigint generated always as identity primary key,
  at       timestamptz not null default now(),
  actor    text not null,
  address  text,
  action   text not null,
  target   text not null,
  outcome  text not null,
  detail   jsonb not null default '{}',
  constraint audit_outcome_check check (outcome in ('done', 'unchanged', 'refused'))
);

-- Pause a queue: workers stop claiming its tasks. Returns true if this call paused it (false:
-- it was paused already). Notifies <schema>.dashboard so open dashboards refresh.
-- select jobs.pause_queue('reports');
create function :SCHEMA.pause_queue(queue text, actor text default current_user) returns boolean
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  changed boolean;
begin
  if queue is null or queue !~ '^[A-Za-z0-9_.:-]{1,63}$' then
    raise exception using errcode = '22023',
      message = format('pgjobs: invalid queue name %L: use 1 to 63 letters, digits, "_", ".", ":" or "-"', queue);
  end if;
  insert into :SCHEMA.queues as q (name, paused, changed_at, changed_by)
  values (queue, true, now(), actor)
  on conflict (name) do update set paused = true, changed_at = now(), changed_by = excluded.changed_by
   where not q.paused
  returning true into changed;
  perform pg_notify(':SCHEMA.dashboard', 'queue');
  return coalesce(changed, false);
end
$$;

-- Resume a paused queue and wake its workers. Returns true if this call resumed it.
create function :SCHEMA.resume_queue(queue text, actor text default current_user) returns boolean
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $$
declare
  changed boolean;
begin
  update :SCHEMA.queues q set paused = false, changed_at = now(), changed_by = actor
   where q.name = queue and q.paused
  returning true into changed;
  if changed then
    perform pg_notify(':SCHEMA.ready', queue);
  end if;
  perform pg_notify(':SCHEMA.dashboard', 'queue');
  return coalesce(changed, false);
end
$$;
revoke execute on function :SCHEMA.pause_queue(text, text), :SCHEMA.resume_queue(text, text) from public;

-- One row per attempt that ended other than in success: which worker ran it, when, and how it
-- ended (failed, retrying, cancelled, or ready: handed back at shutdown or rescued after its
-- lease lapsed). An attempt that succeeded is the task's row itself (worker_id, started_at,
-- finished_at), so the hot path — claim, succeed — writes nothing here: recording every attempt
-- cost a finish batch of 1,000 from 20.8 to 23.2 ms. Written by a statement-level trigger from
-- the transition tables the workflow trigger already captures. Rows of deleted (pruned,
-- purged) tasks go with them.
create table :SCHEMA.task_attempts (
  task_id     bigint not null,
  attempt     smallint not null,
  worker_id   uuid,
  started_at  timestamptz,
  ended_at    timestamptz not null default now(),
  outcome     :SCHEMA.task_state not null,
  error       jsonb
) with (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
-- Serves the dashboard's task page and the delete trigger below.
create index task_attempts_task_idx on :SCHEMA.task_attempts (task_id);

-- SECURITY DEFINER: the trigger runs in the worker's acknowledgement, and a worker role granted
-- before this migration has no privileges on task_attempts.
create function :SCHEMA.tasks_record_attempts() returns trigger
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $$
begin
  -- Claims (ready -> running) and lease renewals (running -> running) end no attempt, and a
  -- success is recorded in the task's row: one scan of the statement's rows, then done.
  if not exists (select 1 from new_rows n where n.state not in ('running', 'succeeded')) then
    return null;
  end if;
  insert into :SCHEMA.task_attempts (task_id, attempt, worker_id, started_at, ended_at, outcome, error)
  select n.id, o.attempts, o.worker_id, o.started_at, now(), n.state,
         case when n.state <> 'succeeded' then n.error end
    from new_rows n join old_rows o on o.id = n.id
   where o.state = 'running' and n.state not in ('running', 'succeeded');
  return null;
end
$$;

create trigger tasks_record_attempts
  after update on :SCHEMA.tasks
  referencing old table as old_rows new table as new_rows
  for each statement execute function :SCHEMA.tasks_record_attempts();

create function :SCHEMA.tasks_forget_attempts() returns trigger
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $$
begin
  delete from :SCHEMA.task_attempts a using old_rows o where a.task_id = o.id;
  return null;
end
$$;

-- Task handlers' log lines (ctx.log), for the dashboard's task page, kept only when the app
-- sends its log there (taskLogStream(), docs/dashboard.md). Unlogged: diagnostics, cheap to
-- write, lost in a crash. Pruned by age by the stream itself (task_log_at_idx, a BRIN index:
-- lines arrive in time order).
create unlogged table :SCHEMA.task_logs (
  task_id  bigint not null,
  attempt  smallint,
  at       timestamptz not null,
  level    smallint not null,
  message  text not null,
  fields   jsonb not null default '{}'
);
create index task_logs_task_idx on :SCHEMA.task_logs (task_id, at);
create index task_logs_at_idx on :SCHEMA.task_logs using brin (at);

create trigger tasks_forget_attempts
  after delete on :SCHEMA.tasks
  referencing old table as old_rows
  for each statement execute function :SCHEMA.tasks_forget_attempts();
