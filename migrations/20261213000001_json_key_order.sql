-- `jsonb` keeps objects with their keys sorted; `json` keeps the text as written. These columns
-- hold what models are given or wrote (a job's train_args, a model's knob config, a trial's
-- proposal with its knobs, the trial logs), and models see dict keys in order (pandas builds a
-- DataFrame's columns from a dict's order), so they keep the order the user or the model wrote.
-- No query compares, indexes or looks into these columns; `json` has no equality operator.
-- Rows written before keep the sorted order jsonb gave them.
alter table train_jobs alter column train_args type json using train_args::json;
alter table sub_train_jobs alter column knob_config type json using knob_config::json;
alter table trials alter column proposal type json using proposal::json;
alter table trial_logs alter column body type json using body::json;
