-- The roster as grading knows it, built from its own roster events: the
-- schools, terms and sections in the clear, people by opaque id with their
-- personal fields still sealed, who is enrolled where, guardians, and the
-- objective sets each section teaches. A removed record keeps its row,
-- marked, so a late re-import can bring it back by its sourcedId.

CREATE TABLE roster_schools (
    tenant_id   text NOT NULL,
    school_id   text NOT NULL,
    name        text NOT NULL,
    identifier  text,
    removed     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, school_id)
);

CREATE TABLE roster_terms (
    tenant_id    text NOT NULL,
    term_id      text NOT NULL,
    title        text NOT NULL,
    kind         text NOT NULL,
    starts_on    date NOT NULL,
    ends_on      date NOT NULL,
    school_year  text NOT NULL,
    parent_id    text,
    removed      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, term_id)
);

CREATE TABLE roster_sections (
    tenant_id     text NOT NULL,
    section_id    text NOT NULL,
    title         text NOT NULL,
    class_code    text,
    school_id     text NOT NULL,
    course_id     text NOT NULL,
    course_title  text NOT NULL,
    course_code   text,
    term_ids      text[] NOT NULL DEFAULT '{}',
    removed       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, section_id)
);

-- ``personal`` is the sealed value of the latest PersonRostered event: it
-- opens only through the keyring, and not at all once the person is erased,
-- when it is also cleared here.
CREATE TABLE roster_people (
    tenant_id          text NOT NULL,
    person_id          uuid NOT NULL,
    sourced_id_digest  text NOT NULL,
    role               text NOT NULL,
    school_ids         text[] NOT NULL DEFAULT '{}',
    enabled            boolean NOT NULL DEFAULT true,
    personal           jsonb,
    removed            boolean NOT NULL DEFAULT false,
    erased             boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, person_id),
    UNIQUE (tenant_id, sourced_id_digest)
);

CREATE TABLE roster_enrollments (
    tenant_id   text NOT NULL,
    section_id  text NOT NULL,
    person_id   uuid NOT NULL,
    role        text NOT NULL,
    begins_on   date,
    ends_on     date,
    active      boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, section_id, person_id, role)
);

CREATE INDEX roster_enrollments_person
    ON roster_enrollments (tenant_id, person_id);

CREATE TABLE roster_guardians (
    tenant_id    text NOT NULL,
    guardian_id  uuid NOT NULL,
    student_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, guardian_id, student_id)
);

CREATE TABLE section_objective_sets (
    tenant_id         text NOT NULL,
    section_id        text NOT NULL,
    objective_set_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, section_id, objective_set_id)
);

SELECT isolate_by_tenant('roster_schools');
SELECT isolate_by_tenant('roster_terms');
SELECT isolate_by_tenant('roster_sections');
SELECT isolate_by_tenant('roster_people');
SELECT isolate_by_tenant('roster_enrollments');
SELECT isolate_by_tenant('roster_guardians');
SELECT isolate_by_tenant('section_objective_sets');
