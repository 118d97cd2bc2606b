-- Read models of the objectives service, rebuilt from its events at will.
-- Every table is keyed by tenant first: no read crosses a district.

CREATE TABLE objective_sets (
    tenant_id         text NOT NULL,
    objective_set_id  uuid NOT NULL,
    title             text NOT NULL,
    subject           text NOT NULL,
    owner_scope       text NOT NULL,
    owner_id          text NOT NULL,
    grade_bands       text[] NOT NULL DEFAULT '{}',
    status            text NOT NULL,
    published_version integer NOT NULL DEFAULT 0,
    case_identifier   text,
    stream_version    integer NOT NULL,
    state             jsonb NOT NULL,
    PRIMARY KEY (tenant_id, objective_set_id)
);

CREATE INDEX objective_sets_case_identifier
    ON objective_sets (tenant_id, case_identifier)
    WHERE case_identifier IS NOT NULL;

CREATE TABLE objectives (
    tenant_id         text NOT NULL,
    objective_set_id  uuid NOT NULL,
    objective_id      uuid NOT NULL,
    parent_id         uuid,
    code              text,
    statement         text NOT NULL,
    label             text,
    sort_order        integer NOT NULL DEFAULT 0,
    item_type         text,
    grade_bands       text[] NOT NULL DEFAULT '{}',
    case_identifier   text,
    case_uri          text,
    PRIMARY KEY (tenant_id, objective_set_id, objective_id)
);

CREATE INDEX objectives_code ON objectives (tenant_id, lower(code));

CREATE TABLE objective_set_versions (
    tenant_id         text NOT NULL,
    objective_set_id  uuid NOT NULL,
    set_version       integer NOT NULL,
    published_at      timestamptz NOT NULL,
    state             jsonb NOT NULL,
    PRIMARY KEY (tenant_id, objective_set_id, set_version)
);

CREATE TABLE scales (
    tenant_id         text NOT NULL,
    scale_id          uuid NOT NULL,
    name              text NOT NULL,
    status            text NOT NULL,
    latest_version    integer NOT NULL,
    published_version integer,
    stream_version    integer NOT NULL,
    PRIMARY KEY (tenant_id, scale_id)
);

CREATE TABLE scale_versions (
    tenant_id         text NOT NULL,
    scale_id          uuid NOT NULL,
    scale_version     integer NOT NULL,
    scale             jsonb NOT NULL,
    PRIMARY KEY (tenant_id, scale_id, scale_version)
);
