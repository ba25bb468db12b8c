-- worker_register: a worker announces itself at start (and again if its row was lost).
-- $1 id uuid, $2 name, $3 hostname, $4 pid, $5 queues text[], $6 concurrency, $7 meta jsonb
insert into :SCHEMA.workers (id, name, hostname, pid, queues, concurrency, meta)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (id) do update set heartbeat_at = now()
