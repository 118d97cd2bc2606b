-- Retention: how long each district keeps a student who left, and when
-- each person left. A person left when removed (removed_at) or when their
-- last enrollment ended (ended_at); both come from roster events, so a
-- rebuild of the roster fills them for people who left before this table.

CREATE TABLE retention_periods (
    tenant_id  text PRIMARY KEY,
    days       integer NOT NULL CHECK (days > 0),
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL
);

ALTER TABLE roster_people ADD COLUMN removed_at timestamptz;
ALTER TABLE roster_enrollments ADD COLUMN ended_at timestamptz;

SELECT isolate_by_tenant('retention_periods');

-- The scheduled retention job finds the districts that set a period as the
-- relay's role; it reads and erases each district's people under its tenant.
CREATE POLICY relay_finds_periods ON retention_periods
    FOR SELECT TO mastery_relay USING (true);
GRANT SELECT ON retention_periods TO mastery_relay;
