--! Previous: sha1:7afb05028e926a538d017ed01cf3631446ed525b
--! Hash: sha1:4da15fcde8d0874f5873387b4689c5ce351ab325
--! Message: leased index

-- The running set's index keyed on lease_until's presence instead of state = 'running'.
--
-- Measured: with tasks_running_idx (worker_id) where state = 'running', the planner matched that
-- predicate in task_finish_many's `state = 'running' and worker_id = $4`, believed the running
-- set held one row (statistics from when nothing ran) and drove a nested loop from it, re-running
-- the unnest of the batch once per running task: 14.5 M join-filter rows and 3.6 s for one batch
-- of 2,000 acknowledgements with 7,250 tasks running. A running task is exactly one that holds a
-- lease (claim sets lease_until; finish, fail, rescue, release and cancel clear it), so the index
-- says `where lease_until is not null`, which the acknowledgements do not imply: they can only
-- use the primary key, one probe per acknowledged id, whatever the statistics say.
drop index :SCHEMA.tasks_running_idx;
create index tasks_leased_idx on :SCHEMA.tasks (worker_id) where lease_until is not null;
