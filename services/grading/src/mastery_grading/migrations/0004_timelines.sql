-- Timelines: per student and objective, how mastery changed in valid time
-- (when the work happened) and in recorded time (when the school knew).
-- The projector fills the first five tables from grading's own log; a
-- rebuild fills copies of them and swaps them in.

-- Each assessment event of a timeline, as the projector folded it.
CREATE TABLE timeline_evidence (
    tenant_id      text NOT NULL,
    student_id     text NOT NULL,
    objective_id   uuid NOT NULL,
    assessment_id  uuid NOT NULL,
    event_id       uuid NOT NULL,
    position       bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    event          jsonb NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX timeline_evidence_pair
    ON timeline_evidence (tenant_id, student_id, objective_id);
CREATE INDEX timeline_evidence_assessment
    ON timeline_evidence (tenant_id, assessment_id);

-- Every change point of every revision: valid from ``valid_from`` until
-- the next point of the same revision, and believed from
-- ``recorded_from`` until ``recorded_until`` (open while still believed).
CREATE TABLE timeline_points (
    tenant_id       text NOT NULL,
    student_id      text NOT NULL,
    objective_id    uuid NOT NULL,
    revision        integer NOT NULL,
    valid_from      timestamptz NOT NULL,
    recorded_from   timestamptz NOT NULL,
    recorded_until  timestamptz,
    status          text NOT NULL,
    score           double precision,
    level           double precision,
    level_label     text,
    mastered        boolean NOT NULL,
    method          text NOT NULL,
    scale_id        uuid,
    scale_version   integer NOT NULL,
    policy_version  integer,
    counted         uuid[] NOT NULL,
    cause_event_id  uuid NOT NULL,
    reason          text NOT NULL,
    result          jsonb NOT NULL,
    PRIMARY KEY (tenant_id, student_id, objective_id, revision, valid_from)
);

CREATE INDEX timeline_points_open
    ON timeline_points (tenant_id, student_id, objective_id, valid_from)
    WHERE recorded_until IS NULL;

-- The newest state of each timeline, what summaries and matrices read.
CREATE TABLE timeline_states (
    tenant_id         text NOT NULL,
    student_id        text NOT NULL,
    objective_id      uuid NOT NULL,
    objective_set_id  uuid,
    section_id        text,
    scale_id          uuid NOT NULL,
    scale_version     integer NOT NULL,
    policy_version    integer,
    method            text NOT NULL,
    status            text NOT NULL,
    score             double precision,
    level             double precision,
    level_label       text,
    mastered          boolean NOT NULL,
    valid_from        timestamptz,
    recorded_at       timestamptz NOT NULL,
    revision          integer NOT NULL,
    stream_version    integer NOT NULL,
    PRIMARY KEY (tenant_id, student_id, objective_id)
);

CREATE INDEX timeline_states_section ON timeline_states (tenant_id, section_id);
CREATE INDEX timeline_states_set ON timeline_states (tenant_id, objective_set_id);
CREATE INDEX timeline_states_scale ON timeline_states (tenant_id, scale_id);

-- The policies and scale versions in force for timelines, as the log's
-- RecalculationStarted events set them.
CREATE TABLE timeline_policies (
    tenant_id         text NOT NULL,
    objective_set_id  uuid NOT NULL,
    objective_id      uuid,
    policy_version    integer NOT NULL,
    policy            jsonb NOT NULL,
    UNIQUE NULLS NOT DISTINCT (tenant_id, objective_set_id, objective_id)
);

CREATE TABLE timeline_scales (
    tenant_id      text NOT NULL,
    scale_id       uuid NOT NULL,
    scale_version  integer NOT NULL,
    PRIMARY KEY (tenant_id, scale_id)
);

-- Recalculation jobs and how far each has got; not rebuilt, as a job is
-- a fact of the past, not a projection of it. The catalogue's consumer
-- plans a job; the projector announces it in the log (``announced``),
-- applies it in the log's order and records the outcome.
CREATE TABLE timeline_recalculations (
    tenant_id         text NOT NULL,
    job_id            uuid NOT NULL,
    reason            text NOT NULL,
    scale_id          uuid,
    scale_version     integer,
    objective_set_id  uuid,
    objective_id      uuid,
    policy_version    integer,
    timelines         integer NOT NULL,
    done              integer NOT NULL DEFAULT 0,
    changed           integer NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    announced         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, job_id)
);

CREATE INDEX timeline_recalculations_waiting
    ON timeline_recalculations (started_at) WHERE NOT announced;

SELECT isolate_by_tenant('timeline_evidence');
SELECT isolate_by_tenant('timeline_points');
SELECT isolate_by_tenant('timeline_states');
SELECT isolate_by_tenant('timeline_policies');
SELECT isolate_by_tenant('timeline_scales');
SELECT isolate_by_tenant('timeline_recalculations');

-- The projector finds jobs to announce across tenants as the relay's role,
-- as it reads the log; it writes them back under each job's tenant.
CREATE POLICY relay_finds_jobs ON timeline_recalculations
    FOR SELECT TO mastery_relay USING (true);
GRANT SELECT ON timeline_recalculations TO mastery_relay;
