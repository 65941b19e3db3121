-- How each worker got its model's dependencies (`POST /internal/environment`): seconds spent
-- (building or waiting for a shared environment), whether it reused one, the environment's
-- size and what the user should know about it. Null until the worker reports.
alter table services
    add column env_seconds    double precision
        constraint services_env_seconds_check check (env_seconds >= 0),
    add column env_reused     boolean,
    add column env_size_bytes bigint
        constraint services_env_size_bytes_check check (env_size_bytes >= 0),
    add column env_warnings   text[];

-- When a sub-job's TIME_HOURS budget starts counting: the first time one of its workers had
-- the model loaded and reported its knob config, so installing dependencies is not charged to
-- the budget. Sub-jobs written before this migration count from `datetime_started`.
alter table sub_train_jobs add column budget_started_at timestamptz;

-- What workers do with a pinned dependency that has no distribution installable on their
-- Python: `strict` (fail, naming the nearest installable versions) or `nearest` (install the
-- nearest release, with a warning). Null: the deployment's setting (RAFIKI_DEPENDENCY_PINS).
alter table models add column dependency_pins text
    constraint models_dependency_pins_check check (dependency_pins in ('strict', 'nearest'));
