-- GPUs held by live services, one row per (node, device). The primary key makes it impossible
-- to hand one device to two services, whatever an admin's memory says; rows are deleted in the
-- statement that ends their service (`services::finish`). Node ids are the backend's: `local`
-- for the process and docker backends (one host), Swarm's node id for the swarm backend.
create table gpu_allocations (
    node       text    not null,
    device     integer not null constraint gpu_allocations_device_check check (device >= 0),
    service_id uuid    not null constraint gpu_allocations_service_fkey references services (id),
    constraint gpu_allocations_pkey primary key (node, device)
);
create index gpu_allocations_service_idx on gpu_allocations (service_id);

-- Services written before nodes were recorded ran on the admin's own host.
update services set node = 'local' where node is null and backend in ('process', 'docker');
insert into gpu_allocations (node, device, service_id)
    select node, unnest(gpus), id from services
    where node is not null and status in ('STARTED', 'DEPLOYING', 'RUNNING')
    on conflict do nothing;

-- A train job waiting for GPUs (issue 16's queue) says why here; null when it is not waiting.
-- Waiting jobs start in the order they were submitted.
alter table train_jobs add column waiting_reason text;
create index train_jobs_waiting_idx on train_jobs (datetime_started, id)
    where waiting_reason is not null;
