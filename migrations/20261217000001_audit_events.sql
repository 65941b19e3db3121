-- The audit trail (issue 18, item 4; docs/observability.md, "Audit trail"): one row per
-- mutating request of a signed-in user and per login attempt. Successes are written in the
-- transaction of their change; refusals after the fact. Rows are never updated.
--
-- `actor_id` has no foreign key: a record must outlive (and never block) what it names. Text
-- columns are bounded so that what a client sends cannot bloat a row.
create table audit_events (
    id             bigserial   primary key,
    at             timestamptz not null default now(),
    actor_id       uuid,
    actor_role     text,
    action         text        not null,
    target_kind    text,
    target_id      text        constraint audit_events_target_id_check
                                   check (char_length(target_id) <= 256),
    outcome        text        not null,
    client_address text        constraint audit_events_client_address_check
                                   check (char_length(client_address) <= 64),
    request_id     text        constraint audit_events_request_id_check
                                   check (char_length(request_id) <= 128)
);
-- `GET /audit` lists newest first, filtered by actor, action and time.
create index audit_events_at_idx on audit_events (at desc, id desc);
create index audit_events_actor_idx on audit_events (actor_id, at desc, id desc);
create index audit_events_action_idx on audit_events (action, at desc, id desc);
