-- What grading knows of the objectives service: scales, calculation
-- policies and objectives, built from that service's events alone. Every
-- version of a scale and of a policy is kept, because an assessment names
-- the version it was made with.

CREATE TABLE catalogue_scale_versions (
    tenant_id      text NOT NULL,
    scale_id       uuid NOT NULL,
    scale_version  integer NOT NULL,
    view           jsonb NOT NULL,
    defined_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, scale_id, scale_version)
);

CREATE TABLE catalogue_scales (
    tenant_id         text NOT NULL,
    scale_id          uuid NOT NULL,
    latest_version    integer NOT NULL DEFAULT 0,
    published_version integer,
    archived          boolean NOT NULL DEFAULT false,
    stream_version    integer NOT NULL,
    PRIMARY KEY (tenant_id, scale_id)
);

-- A policy of a whole set has no objective; NULLS NOT DISTINCT lets that
-- row be unique too.
CREATE TABLE catalogue_policy_versions (
    tenant_id        text NOT NULL,
    objective_set_id uuid NOT NULL,
    objective_id     uuid,
    policy_version   integer NOT NULL,
    policy           jsonb NOT NULL,
    set_at           timestamptz NOT NULL,
    UNIQUE NULLS NOT DISTINCT
        (tenant_id, objective_set_id, objective_id, policy_version)
);

-- The version in force per set and per objective override; a cleared
-- override keeps its row with no version, so a late, older event cannot
-- bring it back.
CREATE TABLE catalogue_policies (
    tenant_id        text NOT NULL,
    objective_set_id uuid NOT NULL,
    objective_id     uuid,
    policy_version   integer,
    stream_version   integer NOT NULL,
    UNIQUE NULLS NOT DISTINCT (tenant_id, objective_set_id, objective_id)
);

CREATE TABLE catalogue_objectives (
    tenant_id        text NOT NULL,
    objective_set_id uuid NOT NULL,
    objective_id     uuid NOT NULL,
    parent_id        uuid,
    code             text,
    removed          boolean NOT NULL DEFAULT false,
    stream_version   integer NOT NULL,
    PRIMARY KEY (tenant_id, objective_id)
);

CREATE INDEX catalogue_objectives_set
    ON catalogue_objectives (tenant_id, objective_set_id);

SELECT isolate_by_tenant('catalogue_scale_versions');
SELECT isolate_by_tenant('catalogue_scales');
SELECT isolate_by_tenant('catalogue_policy_versions');
SELECT isolate_by_tenant('catalogue_policies');
SELECT isolate_by_tenant('catalogue_objectives');
