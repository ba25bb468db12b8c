-- worker_deregister: a worker's clean stop, its hand-off offer with it. $1 id uuid.
with offer as (
  delete from :SCHEMA.worker_offers where worker_id = $1
)
delete from :SCHEMA.workers where id = $1
