-- The shared secret of an inference job's predictor and inference workers: workers answer
-- `POST /predict` only to requests that carry it, so other services on a network cannot query
-- them. The admin generates it; it is never shown through the API. Jobs written before this
-- migration get one too, so that services relaunched after the upgrade have one to agree on.
alter table inference_jobs add column predict_secret text;
update inference_jobs
    set predict_secret = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
alter table inference_jobs alter column predict_secret set not null;
