-- Branch `share`: sub-jobs may record BAYES_OPT_WITH_PARAM_SHARING, the advisor Rafiki picks for
-- a model that declares the SHARE_PARAMS policy. The check lists every advisor name Rafiki has
-- (ENAS included), so a migration of another branch that widens it for ENAS and this one can
-- run in either order without one taking a name away from the other.
alter table sub_train_jobs drop constraint sub_train_jobs_advisor_type_check;
alter table sub_train_jobs add constraint sub_train_jobs_advisor_type_check
    check (advisor_type in ('FIXED', 'BAYES_OPT_WITH_PARAM_SHARING', 'BAYES_OPT', 'ENAS', 'RANDOM'));
