-- doctor_lapsed_leases: running tasks whose lease lapsed and that no rescuer has picked up yet,
-- per queue, with how long ago the oldest lapsed. Every worker runs the rescuer every few
-- seconds, so a lease lapsed for long means no worker is running (or none can reach the
-- database). No parameters. Index: tasks_leased_idx (a running task holds a lease).
select t.queue, count(*)::int as tasks,
       extract(epoch from now() - min(t.lease_until))::float8 as oldest_lapsed_s
  from :SCHEMA.tasks t
 where t.lease_until is not null and t.lease_until < now() and t.state = 'running'
 group by t.queue
 order by 3 desc
