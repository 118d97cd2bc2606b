-- Assessments and traditional grades as they stand now, written in the
-- same transaction as the events that change them, and the idempotency
-- keys of the requests that did so. Each row's ``state`` is the fold of
-- its stream (``stream_version`` events); the other columns are copies
-- kept for lookups. JSON values are ``json``, not ``jsonb``: nothing
-- queries inside them, and a batch of thousands writes them faster.

CREATE TABLE assessments (
    tenant_id       text NOT NULL,
    assessment_id   uuid NOT NULL,
    student_id      text NOT NULL,
    section_id      text,
    objective_id    uuid NOT NULL,
    assessed_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- The recording's place in the log: it orders recordings of one
    -- transaction, which share their recorded time.
    position        bigint NOT NULL,
    voided          boolean NOT NULL DEFAULT false,
    stream_version  integer NOT NULL,
    state           json NOT NULL,
    PRIMARY KEY (tenant_id, assessment_id)
);

CREATE INDEX assessments_student
    ON assessments (tenant_id, student_id, assessed_at, position);

CREATE TABLE traditional_grades (
    tenant_id       text NOT NULL,
    grade_id        uuid NOT NULL,
    student_id      text NOT NULL,
    section_id      text NOT NULL,
    assessed_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    voided          boolean NOT NULL DEFAULT false,
    stream_version  integer NOT NULL,
    state           json NOT NULL,
    PRIMARY KEY (tenant_id, grade_id)
);

CREATE INDEX traditional_grades_student
    ON traditional_grades (tenant_id, student_id, section_id);

CREATE TABLE grade_bridges (
    tenant_id       text NOT NULL,
    section_id      text NOT NULL,
    stream_version  integer NOT NULL,
    bridge          json NOT NULL,
    PRIMARY KEY (tenant_id, section_id)
);

-- A key is the client's, per tenant. ``digest`` identifies the request it
-- came with (route and canonical body); ``answer`` is what was answered,
-- returned again to a retry of the same request.
CREATE TABLE idempotency_keys (
    tenant_id    text NOT NULL,
    key          text NOT NULL,
    digest       text NOT NULL,
    answer       json NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

SELECT isolate_by_tenant('assessments');
SELECT isolate_by_tenant('traditional_grades');
SELECT isolate_by_tenant('grade_bridges');
SELECT isolate_by_tenant('idempotency_keys');
