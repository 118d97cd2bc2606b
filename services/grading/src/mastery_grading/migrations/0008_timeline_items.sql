-- Each timeline keeps every version of its evidence items once, and each
-- point names the versions it counts and leaves out instead of holding its
-- whole explanation: that explanation listed every item up to the point's
-- valid time, so a point's row grew with its timeline and most of what a
-- rebuild wrote was the same items again (see docs/benchmarks.md,
-- "Timeline rebuild"). A version is named by its assessment and the
-- revision that first listed it. Safe to run again: each step looks
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

ALTER TABLE timeline_points
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

    UPDATE timeline_points p SET
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
        summary = (
            (p.result::jsonb - 'explanation')
            || (p.result::jsonb -> 'explanation') - 'counted' - 'left_out'
        )::json;

    ALTER TABLE timeline_points DROP COLUMN result;
END
$$;

ALTER TABLE timeline_points
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
END
$$;
