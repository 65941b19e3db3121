-- The whole Rafiki-rs schema, designed for the full contract (../shared/CONTRACT.md).
-- Migrations are append-only: change the schema with a new file, never by editing this one.
-- Statuses are checked text mirrored by the Rust enums in rafiki-types (which also hold their
-- transition tables); every constraint is named so the store can map violations to the
-- contract's error names.

create table users (
    id               uuid        primary key,
    email            text        not null,
    password_hash    text        not null,
    user_type        text        not null
        constraint users_user_type_check
        check (user_type in ('SUPERADMIN', 'ADMIN', 'MODEL_DEVELOPER', 'APP_DEVELOPER')),
    datetime_created timestamptz not null default now(),
    -- Bans are permanent: set once, never cleared.
    banned_date      timestamptz
);
-- Emails are compared case-insensitively, so one person cannot hold two accounts by case.
create unique index users_email_key on users (lower(email));
create index users_banned_idx on users (id) where banned_date is not null;

create table datasets (
    id               uuid        primary key,
    owner_id         uuid        not null constraint datasets_owner_fkey references users (id),
    name             text        not null,
    task             text        not null,
    size_bytes       bigint      not null constraint datasets_size_check check (size_bytes >= 0),
    sha256           text        not null,
    -- Key of the stored object under the data directory (never a client-chosen path).
    storage_key      text        not null constraint datasets_storage_key_key unique,
    source_url       text,
    datetime_created timestamptz not null default now()
);
create index datasets_owner_task_idx on datasets (owner_id, task, datetime_created desc);

create table models (
    id               uuid        primary key,
    user_id          uuid        not null constraint models_user_fkey references users (id),
    name             text        not null,
    task             text        not null,
    model_class      text        not null,
    docker_image     text,
    dependencies     jsonb       not null default '{}'::jsonb,
    access_right     text        not null default 'PRIVATE'
        constraint models_access_right_check check (access_right in ('PUBLIC', 'PRIVATE')),
    size_bytes       bigint      not null constraint models_size_check check (size_bytes >= 0),
    sha256           text        not null,
    storage_key      text        not null constraint models_storage_key_key unique,
    datetime_created timestamptz not null default now(),
    constraint models_user_name_key unique (user_id, name)
);
create index models_task_access_idx on models (task, access_right, datetime_created desc);

create table train_jobs (
    id               uuid        primary key,
    user_id          uuid        not null constraint train_jobs_user_fkey references users (id),
    app              text        not null,
    app_version      integer     not null constraint train_jobs_app_version_check check (app_version >= 1),
    task             text        not null,
    budget           jsonb       not null,
    train_dataset_id uuid        not null constraint train_jobs_train_dataset_fkey references datasets (id),
    val_dataset_id   uuid        not null constraint train_jobs_val_dataset_fkey references datasets (id),
    train_args       jsonb,
    status           text        not null default 'STARTED'
        constraint train_jobs_status_check check (status in ('STARTED', 'RUNNING', 'STOPPED', 'ERRORED')),
    error            text,
    datetime_started timestamptz not null default now(),
    datetime_stopped timestamptz,
    constraint train_jobs_user_app_version_key unique (user_id, app, app_version)
);
-- At most one live train job per (user, app): the contract's InvalidTrainJobError, also under races.
create unique index train_jobs_one_live_per_app on train_jobs (user_id, app)
    where status in ('STARTED', 'RUNNING');
create index train_jobs_user_started_idx on train_jobs (user_id, datetime_started desc);
create index train_jobs_live_idx on train_jobs (status) where status in ('STARTED', 'RUNNING');

-- One sub-job per model of a train job: its own advisor, budget share and status.
create table sub_train_jobs (
    id               uuid        primary key,
    train_job_id     uuid        not null constraint sub_train_jobs_train_job_fkey references train_jobs (id),
    -- RESTRICT: a model used by any train job cannot be deleted (ModelUsedError).
    model_id         uuid        not null constraint sub_train_jobs_model_fkey references models (id) on delete restrict,
    gpu_count        integer     not null default 0 constraint sub_train_jobs_gpu_count_check check (gpu_count >= 0),
    advisor_type     text
        constraint sub_train_jobs_advisor_type_check check (advisor_type in ('FIXED', 'BAYES_OPT', 'RANDOM')),
    knob_config      jsonb,
    status           text        not null default 'STARTED'
        constraint sub_train_jobs_status_check check (status in ('STARTED', 'RUNNING', 'STOPPED', 'ERRORED')),
    error            text,
    datetime_started timestamptz not null default now(),
    datetime_stopped timestamptz,
    constraint sub_train_jobs_job_model_key unique (train_job_id, model_id)
);
create index sub_train_jobs_model_idx on sub_train_jobs (model_id);

create table inference_jobs (
    id               uuid        primary key,
    user_id          uuid        not null constraint inference_jobs_user_fkey references users (id),
    train_job_id     uuid        not null constraint inference_jobs_train_job_fkey references train_jobs (id),
    budget           jsonb       not null,
    status           text        not null default 'STARTED'
        constraint inference_jobs_status_check check (status in ('STARTED', 'RUNNING', 'STOPPED', 'ERRORED')),
    error            text,
    datetime_started timestamptz not null default now(),
    datetime_stopped timestamptz
);
-- At most one live deployment per train job (RunningInferenceJobExistsError, also under races).
create unique index inference_jobs_one_live_per_train_job on inference_jobs (train_job_id)
    where status in ('STARTED', 'RUNNING');
create index inference_jobs_user_started_idx on inference_jobs (user_id, datetime_started desc);
create index inference_jobs_train_job_idx on inference_jobs (train_job_id, datetime_started desc);

-- A service is one process or container launched by a backend: a train worker, an inference
-- worker or a predictor. The admin reconciles this table with the backend at start-up.
create table services (
    id               uuid        primary key,
    service_type     text        not null
        constraint services_service_type_check check (service_type in ('TRAIN', 'ADVISOR', 'PREDICT', 'INFERENCE')),
    status           text        not null default 'STARTED'
        constraint services_status_check check (status in ('STARTED', 'DEPLOYING', 'RUNNING', 'ERRORED', 'STOPPED')),
    backend          text        not null constraint services_backend_check check (backend in ('process', 'docker', 'swarm')),
    -- Process id, container id or swarm service id, once launched.
    backend_id       text,
    -- Node the service runs on (for per-node GPU inventories) and where it listens, if it does.
    node             text,
    host             text,
    port             integer     constraint services_port_check check (port between 1 and 65535),
    gpus             integer[]   not null default '{}',
    -- sha256 of the service's bearer token for the internal API; the token itself is never stored.
    token_hash       text        not null constraint services_token_hash_key unique,
    restarts         integer     not null default 0,
    error            text,
    datetime_started timestamptz not null default now(),
    datetime_stopped timestamptz
);
create index services_live_idx on services (status) where status in ('STARTED', 'DEPLOYING', 'RUNNING');

create table train_job_workers (
    service_id       uuid        primary key constraint train_job_workers_service_fkey references services (id),
    sub_train_job_id uuid        not null constraint train_job_workers_sub_train_job_fkey references sub_train_jobs (id)
);
create index train_job_workers_sub_train_job_idx on train_job_workers (sub_train_job_id);

create table trials (
    id               uuid        primary key,
    -- Denormalised from the sub-job so a train job's trial listing is one index scan.
    train_job_id     uuid        not null constraint trials_train_job_fkey references train_jobs (id),
    sub_train_job_id uuid        not null constraint trials_sub_train_job_fkey references sub_train_jobs (id),
    no               integer     not null constraint trials_no_check check (no >= 1),
    worker_id        uuid        constraint trials_worker_fkey references services (id),
    proposal         jsonb       not null,
    status           text        not null default 'PENDING'
        constraint trials_status_check check (status in ('PENDING', 'RUNNING', 'COMPLETED', 'ERRORED')),
    score            double precision,
    params_key       text        constraint trials_params_key_key unique,
    params_sha256    text,
    error            text,
    datetime_started timestamptz not null default now(),
    datetime_stopped timestamptz,
    -- `no` counts from 1 per model.
    constraint trials_sub_job_no_key unique (sub_train_job_id, no)
);
create index trials_train_job_started_idx on trials (train_job_id, datetime_started desc, no desc);
create index trials_best_idx on trials (train_job_id, score desc)
    where status = 'COMPLETED' and params_key is not null;
create index trials_worker_idx on trials (worker_id) where status in ('PENDING', 'RUNNING');

-- What a model logged through the SDK logger, in logging order (id is the order).
create table trial_logs (
    id               bigserial   primary key,
    trial_id         uuid        not null constraint trial_logs_trial_fkey references trials (id) on delete cascade,
    time             timestamptz not null,
    kind             text        not null constraint trial_logs_kind_check check (kind in ('PLOT', 'METRICS', 'MESSAGE')),
    body             jsonb       not null
);
create index trial_logs_trial_idx on trial_logs (trial_id, id);

create table inference_job_workers (
    service_id       uuid        primary key constraint inference_job_workers_service_fkey references services (id),
    inference_job_id uuid        not null constraint inference_job_workers_inference_job_fkey references inference_jobs (id),
    trial_id         uuid        not null constraint inference_job_workers_trial_fkey references trials (id)
);
create index inference_job_workers_job_idx on inference_job_workers (inference_job_id);

create table inference_job_predictors (
    inference_job_id uuid        primary key constraint inference_job_predictors_job_fkey references inference_jobs (id),
    service_id       uuid        not null constraint inference_job_predictors_service_fkey references services (id)
        constraint inference_job_predictors_service_key unique
);
