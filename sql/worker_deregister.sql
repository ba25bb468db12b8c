-- worker_deregister: a worker's clean stop. $1 id uuid.
delete from :SCHEMA.workers where id = $1
