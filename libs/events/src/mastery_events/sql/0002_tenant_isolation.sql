-- Row-level security for the event store, and the roles services run as.
--
-- mastery_app is the role services connect as: it owns nothing, so the
-- policies below bind it. mastery_relay is the one path that reads every
-- tenant's events: the relay and lag queries switch to it with SET ROLE,
-- and mastery_app is a member that does not inherit it, so a plain query
-- of the application never gains its reach.

-- Roles belong to the whole cluster: serialise their creation across
-- schemas migrated at the same time.
SELECT pg_advisory_xact_lock(hashtextextended('mastery.roles', 0));

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mastery_app') THEN
        CREATE ROLE mastery_app NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mastery_relay') THEN
        CREATE ROLE mastery_relay NOLOGIN;
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_auth_members m
        JOIN pg_roles r ON r.oid = m.roleid AND r.rolname = 'mastery_relay'
        JOIN pg_roles a ON a.oid = m.member AND a.rolname = 'mastery_app'
    ) THEN
        GRANT mastery_relay TO mastery_app WITH INHERIT FALSE, SET TRUE;
    END IF;
    EXECUTE format(
        'GRANT USAGE ON SCHEMA %I TO mastery_app, mastery_relay',
        current_schema()
    );
END
$$;

-- Make ``target`` a tenant's table: row-level security enabled and forced
-- (so even its owner is bound), one policy keyed on the transaction's
-- tenant, and the application role allowed ``privileges`` on it. Service
-- migrations call it once per table they create.
CREATE FUNCTION isolate_by_tenant(
    target regclass,
    privileges text DEFAULT 'SELECT, INSERT, UPDATE, DELETE'
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s '
        'USING (tenant_id = current_setting(''mastery.tenant_id'', true)) '
        'WITH CHECK (tenant_id = current_setting(''mastery.tenant_id'', true))',
        target
    );
    EXECUTE format('GRANT %s ON %s TO mastery_app', privileges, target);
END
$$;

-- The log is append-only: the application may add and read, never change.
SELECT isolate_by_tenant('events', 'SELECT, INSERT');
SELECT isolate_by_tenant('processed_events', 'SELECT, INSERT');

-- The relay publishes every tenant's events and keeps its checkpoint.
CREATE POLICY relay_reads_every_tenant ON events
    FOR SELECT TO mastery_relay USING (true);
GRANT SELECT ON events TO mastery_relay;
-- Checkpoints are rows of the log's followers, not of any tenant.
GRANT SELECT, INSERT, UPDATE ON checkpoints TO mastery_relay;
