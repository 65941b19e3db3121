-- When the advisor first answered a worker of this sub-job that its budget is spent (no trial
-- may start any more). Supervision reads it to tell a worker that ended its work from one that
-- crashed when the worker's exit status cannot be read (a worker adopted after an admin
-- restart is not the new admin's child). Null while trials may still start.
alter table sub_train_jobs add column budget_spent_at timestamptz;
