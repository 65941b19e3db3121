-- Early stopping of bad trials (docs/pruning.md, branch prune): the PRUNED status, the
-- pruner's decision on a trial, and the intermediate values of the objective that trials log.

alter table trials drop constraint trials_status_check;
alter table trials add constraint trials_status_check
    check (status in ('PENDING', 'RUNNING', 'COMPLETED', 'ERRORED', 'PRUNED'));

-- Set, all three together, when the pruner decides the running trial must stop; the trial
-- becomes PRUNED when its worker finishes it so. A decision on a trial that completed anyway
-- (the model logged no more) stays recorded but is not shown.
alter table trials
    add column prune_step   double precision,
    add column prune_value  double precision,
    add column prune_reason text,
    add constraint trials_prune_check check (
        (prune_step is null) = (prune_value is null) and (prune_step is null) = (prune_reason is null));

-- One row per logged value of the job's PRUNE_METRIC, by step (strictly increasing per trial).
-- The sub-job is denormalised from the trial so the pruner reads a model's curves by index.
create table trial_intermediates (
    trial_id         uuid             not null constraint trial_intermediates_trial_fkey references trials (id) on delete cascade,
    sub_train_job_id uuid             not null constraint trial_intermediates_sub_train_job_fkey references sub_train_jobs (id) on delete cascade,
    step             double precision not null,
    value            double precision not null,
    constraint trial_intermediates_pkey primary key (trial_id, step)
);
create index trial_intermediates_sub_train_job_idx on trial_intermediates (sub_train_job_id);
