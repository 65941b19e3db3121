-- What a container backend needs to relaunch a service on its own: the image it runs and the
-- job it serves (a train job or an inference job; container labels carry it). Rows written
-- before this migration have neither, which the process backend never needed.
alter table services
    add column image  text,
    add column job_id uuid;
