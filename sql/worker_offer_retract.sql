-- worker_offer_retract: a worker withdraws its offer (it has work to claim, or it stops) and
-- learns how many of its slots were taken. $1 worker_id uuid.
-- Locks: the offer row (waits for an enqueue that holds it to commit, so `taken` is final).
delete from :SCHEMA.worker_offers where worker_id = $1 returning gen, taken
