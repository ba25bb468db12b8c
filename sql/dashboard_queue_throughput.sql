-- dashboard_queue_throughput: tasks that finished in the last hour, per queue and minute, for the
-- overview's charts. minute is 0 for the current minute, 59 for an hour ago.
-- No parameters. Locks: none. Index: tasks_finished_idx (finished_at) where state in
-- ('succeeded', 'failed', 'cancelled'): a range scan over the last hour's finished tasks only.
select queue,
       least(59, floor(extract(epoch from now() - finished_at) / 60))::int as minute,
       count(*) filter (where state = 'succeeded')::int as succeeded,
       count(*) filter (where state = 'failed')::int as failed,
       count(*) filter (where state = 'cancelled')::int as cancelled
  from :SCHEMA.tasks
 where state in ('succeeded', 'failed', 'cancelled')
   and finished_at > now() - interval '1 hour'
 group by 1, 2
