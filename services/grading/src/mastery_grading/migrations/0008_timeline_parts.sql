-- Each timeline keeps every version of its evidence items once, and each
-- set of rules (method, parameters, scale, policy) its explanations name;
-- each point names the rules and the item versions it counts and leaves
-- out instead of holding its whole explanation. That explanation listed
-- every item up to the point's valid time, so a point's row grew with its
-- timeline and most of what a rebuild wrote was the same items and rules
-- again (see docs/benchmarks.md, "Timeline rebuild"). An item version is
-- named by its assessment and the revision that first listed it, rules by
-- the revision that first used them. Safe to run again: each step looks
-- before it changes anything.

CREATE TABLE IF NOT EXISTS timeline_items (
    tenant_id      text NOT NULL,
    student_id     text NOT NULL,
    objective_id   uuid NOT NULL,
    assessment_id  uuid NOT NULL,
    revision       integer NOT NULL,
    item           json NOT NULL,
    PRIMARY KEY (tenant_id, student_id, objective_id, assessment_id, revision)
);

CREATE TABLE IF NOT EXISTS timeline_rules (
    tenant_id      text NOT NULL,
    student_id     text NOT NULL,
    objective_id   uuid NOT NULL,
    revision       integer NOT NULL,
    header         json NOT NULL,
    PRIMARY KEY (tenant_id, student_id, objective_id, revision)
);

ALTER TABLE timeline_points
    ADD COLUMN IF NOT EXISTS rules_revision integer,
    ADD COLUMN IF NOT EXISTS counted_revisions integer[],
    ADD COLUMN IF NOT EXISTS left_out uuid[],
    ADD COLUMN IF NOT EXISTS left_out_revisions integer[],
    ADD COLUMN IF NOT EXISTS summary json;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_attribute
        WHERE attrelid = 'timeline_points'::regclass
          AND attname = 'result' AND NOT attisdropped
    ) THEN
        RETURN;
    END IF;

    -- Every item a point lists, once per content, named by the first
    -- revision that listed it; jsonb compares content whatever the text.
    INSERT INTO timeline_items AS i (
        tenant_id, student_id, objective_id, assessment_id, revision, item
    )
    SELECT DISTINCT ON (
        p.tenant_id, p.student_id, p.objective_id,
        (listed.item ->> 'assessment_id')::uuid, listed.item::jsonb
    )
        p.tenant_id, p.student_id, p.objective_id,
        (listed.item ->> 'assessment_id')::uuid, p.revision, listed.item
    FROM timeline_points p
    CROSS JOIN LATERAL (
        SELECT value FROM json_array_elements(p.result -> 'explanation' -> 'counted')
        UNION ALL
        SELECT value FROM json_array_elements(p.result -> 'explanation' -> 'left_out')
    ) AS listed (item)
    ORDER BY p.tenant_id, p.student_id, p.objective_id,
        (listed.item ->> 'assessment_id')::uuid, listed.item::jsonb, p.revision
    ON CONFLICT DO NOTHING;

    -- Every set of rules the explanations name, likewise.
    INSERT INTO timeline_rules AS r (
        tenant_id, student_id, objective_id, revision, header
    )
    SELECT DISTINCT ON (p.tenant_id, p.student_id, p.objective_id, named.header)
        p.tenant_id, p.student_id, p.objective_id, p.revision, named.header::json
    FROM timeline_points p
    CROSS JOIN LATERAL (
        SELECT (p.result::jsonb -> 'explanation') - 'counted' - 'left_out'
    ) AS named (header)
    ORDER BY p.tenant_id, p.student_id, p.objective_id, named.header, p.revision
    ON CONFLICT DO NOTHING;

    UPDATE timeline_points p SET
        rules_revision = (
            SELECT r.revision FROM timeline_rules r
            WHERE r.tenant_id = p.tenant_id AND r.student_id = p.student_id
              AND r.objective_id = p.objective_id
              AND r.header::jsonb
                  = (p.result::jsonb -> 'explanation') - 'counted' - 'left_out'
        ),
        counted_revisions = ARRAY(
            SELECT i.revision
            FROM json_array_elements(p.result -> 'explanation' -> 'counted')
                WITH ORDINALITY AS listed (item, place)
            JOIN timeline_items i
              ON i.tenant_id = p.tenant_id AND i.student_id = p.student_id
             AND i.objective_id = p.objective_id
             AND i.assessment_id = (listed.item ->> 'assessment_id')::uuid
             AND i.item::jsonb = listed.item::jsonb
            ORDER BY listed.place
        ),
        left_out = ARRAY(
            SELECT (listed.item ->> 'assessment_id')::uuid
            FROM json_array_elements(p.result -> 'explanation' -> 'left_out')
                WITH ORDINALITY AS listed (item, place)
            ORDER BY listed.place
        ),
        left_out_revisions = ARRAY(
            SELECT i.revision
            FROM json_array_elements(p.result -> 'explanation' -> 'left_out')
                WITH ORDINALITY AS listed (item, place)
            JOIN timeline_items i
              ON i.tenant_id = p.tenant_id AND i.student_id = p.student_id
             AND i.objective_id = p.objective_id
             AND i.assessment_id = (listed.item ->> 'assessment_id')::uuid
             AND i.item::jsonb = listed.item::jsonb
            ORDER BY listed.place
        ),
        summary = (p.result::jsonb - 'explanation')::json;

    ALTER TABLE timeline_points DROP COLUMN result;
END
$$;

ALTER TABLE timeline_points
    ALTER COLUMN rules_revision SET NOT NULL,
    ALTER COLUMN counted_revisions SET NOT NULL,
    ALTER COLUMN left_out SET NOT NULL,
    ALTER COLUMN left_out_revisions SET NOT NULL,
    ALTER COLUMN summary SET NOT NULL;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_policy WHERE polrelid = 'timeline_items'::regclass
    ) THEN
        PERFORM isolate_by_tenant('timeline_items');
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_policy WHERE polrelid = 'timeline_rules'::regclass
    ) THEN
        PERFORM isolate_by_tenant('timeline_rules');
    END IF;
END
$$;
