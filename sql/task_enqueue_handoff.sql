-- task_enqueue_handoff: the TypeScript client's enqueue of one task outside any caller's
-- transaction (a delay() or enqueue() that rides alone in its statement). Hands the task to an
-- idle worker's offered slot when there is one (already claimed, the worker told on its own
-- channel with the row as payload), else enqueues it as task_enqueue_many does.
-- $1..$14 as task_enqueue_many's, one element each: name, args jsonb, queue, priority, run_at,
-- max_attempts, key, headers jsonb, parent_id, group_id, chord_id, timeout_ms, workflow jsonb,
-- delay_ms. Answers in task_enqueue_many's shape (ids: the id as text).
-- Locks: the offer row it takes (FOR UPDATE SKIP LOCKED: enqueues never wait on each other
-- for a slot), the inserted row.
-- A null is the default, as for enqueue_many.
select :SCHEMA.enqueue_handoff($1::text, $2::jsonb, $3::text, $4::int, $5::timestamptz, $6::int,
         $7::text, $8::jsonb, $9::bigint, $10::uuid, $11::uuid, $12::int, $13::jsonb,
         $14::bigint)::text as ids
