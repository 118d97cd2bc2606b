-- What reports knows of the other services, built from their events alone,
-- and the one snapshot per student that a report is read from. The fact
-- tables are the consumers' working state; a snapshot is rebuilt from them
-- whenever an event touches its student.

CREATE TABLE objective_sets (
    tenant_id        text NOT NULL,
    objective_set_id uuid NOT NULL,
    title            text NOT NULL,
    grade_bands      text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, objective_set_id)
);

CREATE TABLE objectives (
    tenant_id        text NOT NULL,
    objective_id     uuid NOT NULL,
    objective_set_id uuid NOT NULL,
    code             text,
    statement        text NOT NULL,
    sort_order       integer NOT NULL DEFAULT 0,
    grade_bands      text[] NOT NULL DEFAULT '{}',
    removed          boolean NOT NULL DEFAULT false,
    stream_version   integer NOT NULL,
    PRIMARY KEY (tenant_id, objective_id)
);

CREATE INDEX objectives_by_set ON objectives (tenant_id, objective_set_id);

-- Every version of a scale: mastery names the version it was read on.
CREATE TABLE scale_versions (
    tenant_id     text NOT NULL,
    scale_id      uuid NOT NULL,
    scale_version integer NOT NULL,
    levels        jsonb NOT NULL,
    PRIMARY KEY (tenant_id, scale_id, scale_version)
);

CREATE TABLE schools (
    tenant_id text NOT NULL,
    school_id text NOT NULL,
    name      text NOT NULL,
    PRIMARY KEY (tenant_id, school_id)
);

CREATE TABLE terms (
    tenant_id text NOT NULL,
    term_id   text NOT NULL,
    title     text NOT NULL,
    starts_on date NOT NULL,
    ends_on   date NOT NULL,
    PRIMARY KEY (tenant_id, term_id)
);

CREATE TABLE sections (
    tenant_id    text NOT NULL,
    section_id   text NOT NULL,
    school_id    text NOT NULL,
    title        text NOT NULL,
    course_title text NOT NULL,
    term_ids     text[] NOT NULL DEFAULT '{}',
    removed      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, section_id)
);

-- Personal fields stay sealed, as they came; only the keyring opens them.
CREATE TABLE people (
    tenant_id text NOT NULL,
    person_id uuid NOT NULL,
    role      text NOT NULL,
    personal  jsonb,
    erased    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, person_id)
);

CREATE TABLE enrollments (
    tenant_id  text NOT NULL,
    person_id  text NOT NULL,
    section_id text NOT NULL,
    role       text NOT NULL,
    active     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, person_id, section_id)
);

CREATE INDEX enrollments_by_section ON enrollments (tenant_id, section_id);

CREATE TABLE section_objective_sets (
    tenant_id        text NOT NULL,
    section_id       text NOT NULL,
    objective_set_id uuid NOT NULL,
    linked           boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, section_id, objective_set_id)
);

CREATE INDEX section_objective_sets_by_set
    ON section_objective_sets (tenant_id, objective_set_id);

CREATE TABLE assessments (
    tenant_id     text NOT NULL,
    assessment_id uuid NOT NULL,
    student_id    text NOT NULL,
    section_id    text,
    objective_id  uuid NOT NULL,
    scale_id      uuid NOT NULL,
    scale_version integer NOT NULL,
    level         double precision,
    mark          text,
    assessed_at   timestamptz NOT NULL,
    evidence      text NOT NULL,
    evidence_kind text NOT NULL,
    comment       text,
    voided        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, assessment_id)
);

CREATE INDEX assessments_by_student ON assessments (tenant_id, student_id);

-- One row per MasteryChanged: the points of a student's timeline.
CREATE TABLE mastery_points (
    tenant_id     text NOT NULL,
    event_id      uuid NOT NULL,
    student_id    text NOT NULL,
    objective_id  uuid NOT NULL,
    valid_from    timestamptz NOT NULL,
    position      bigint NOT NULL,
    status        text NOT NULL,
    level         double precision,
    level_label   text,
    mastered      boolean NOT NULL,
    scale_id      uuid NOT NULL,
    scale_version integer NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX mastery_points_by_student ON mastery_points (tenant_id, student_id);
CREATE INDEX mastery_points_by_scale
    ON mastery_points (tenant_id, scale_id, scale_version);

CREATE TABLE traditional_grades (
    tenant_id       text NOT NULL,
    grade_id        uuid NOT NULL,
    section_id      text NOT NULL,
    student_id      text NOT NULL,
    title           text NOT NULL,
    kind            text NOT NULL,
    percent         double precision,
    points          double precision,
    points_possible double precision,
    passed          boolean,
    assessed_at     timestamptz NOT NULL,
    voided          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, grade_id)
);

CREATE INDEX traditional_grades_by_student
    ON traditional_grades (tenant_id, student_id);

CREATE TABLE grade_bridges (
    tenant_id  text NOT NULL,
    section_id text NOT NULL,
    cuts       jsonb NOT NULL,
    PRIMARY KEY (tenant_id, section_id)
);

-- How far each source service's log has been applied, per tenant: a
-- snapshot built now reflects every event up to these positions.
CREATE TABLE source_positions (
    tenant_id text NOT NULL,
    source    text NOT NULL,
    position  bigint NOT NULL,
    PRIMARY KEY (tenant_id, source)
);

-- The report of one student, whole, and the log positions of the events
-- it reflects, per source service.
CREATE TABLE snapshots (
    tenant_id  text NOT NULL,
    student_id text NOT NULL,
    document   jsonb NOT NULL,
    positions  jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, student_id)
);

SELECT isolate_by_tenant('objective_sets');
SELECT isolate_by_tenant('objectives');
SELECT isolate_by_tenant('scale_versions');
SELECT isolate_by_tenant('schools');
SELECT isolate_by_tenant('terms');
SELECT isolate_by_tenant('sections');
SELECT isolate_by_tenant('people');
SELECT isolate_by_tenant('enrollments');
SELECT isolate_by_tenant('section_objective_sets');
SELECT isolate_by_tenant('assessments');
SELECT isolate_by_tenant('mastery_points');
SELECT isolate_by_tenant('traditional_grades');
SELECT isolate_by_tenant('grade_bridges');
SELECT isolate_by_tenant('source_positions');
SELECT isolate_by_tenant('snapshots');
