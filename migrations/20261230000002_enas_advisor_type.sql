-- ENAS joins the advisors a sub-job may record (rafiki_types::knob::AdvisorType).
-- BAYES_OPT_WITH_PARAM_SHARING is admitted as well, so that this constraint, whichever of the
-- two advisor migrations runs last, accepts every advisor Rafiki names.
alter table sub_train_jobs drop constraint sub_train_jobs_advisor_type_check;
alter table sub_train_jobs add constraint sub_train_jobs_advisor_type_check
    check (advisor_type in ('FIXED', 'BAYES_OPT', 'RANDOM', 'ENAS', 'BAYES_OPT_WITH_PARAM_SHARING'));
