-- worker_offer: an idle worker offers free slots to enqueue_handoff, replacing its previous
-- offer, and learns how many of that offer's slots were taken.
-- $1 worker_id uuid, $2 gen bigint (the new offer's), $3 queues text[], $4 channel text,
-- $5 lease_ms int, $6 slots int (free if every task handed off under the previous offer had
-- arrived), $7 the previous offer's gen, $8 how many of its tasks arrived, $9 ttl_ms int.
-- The new offer's free slots are $6 less the previous offer's tasks still on their way.
-- Locks: this worker's offer row (an enqueue taking a slot holds it until it commits: this
-- waits for it, so `taken` counts every hand-off that committed before).
with old as materialized (
  select o.gen, o.taken from :SCHEMA.worker_offers o where o.worker_id = $1 for update
), slots as (
  select greatest(0, $6::int - greatest(0, coalesce((select old.taken from old where old.gen = $7::bigint), 0) - $8::int)) as free
), offered as (
  insert into :SCHEMA.worker_offers as o (worker_id, gen, queues, channel, lease_ms, free, taken, until)
  select $1, $2, $3, $4, $5, slots.free, 0, now() + $9 * interval '1 millisecond' from slots
  on conflict (worker_id) do update
     set gen = excluded.gen, queues = excluded.queues, channel = excluded.channel,
         lease_ms = excluded.lease_ms, free = excluded.free, taken = 0, until = excluded.until
  returning o.free
)
select (select gen from old) as old_gen, (select taken from old) as old_taken,
       (select free from offered) as free
