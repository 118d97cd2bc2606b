-- The keyring: one data key per person, wrapped by the key-encryption key,
-- in a schema of its own that every service migrates and reads through the
-- shared keyring component. Destroying a key (erasure) clears ``wrapped``
-- for good; the row stays to say who destroyed it and when.

SELECT pg_advisory_xact_lock(hashtextextended('mastery.roles', 0));

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mastery_app') THEN
        CREATE ROLE mastery_app NOLOGIN NOINHERIT;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO mastery_app', current_schema());
END
$$;

CREATE TABLE data_keys (
    tenant_id     text NOT NULL,
    key_id        uuid NOT NULL,
    wrapped       bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    destroyed_at  timestamptz,
    destroyed_by  text,
    PRIMARY KEY (tenant_id, key_id),
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

ALTER TABLE data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON data_keys
    USING (tenant_id = current_setting('mastery.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('mastery.tenant_id', true));
-- Keys are created and destroyed, never deleted: the row is the record.
GRANT SELECT, INSERT, UPDATE ON data_keys TO mastery_app;

-- A known value wrapped by the key-encryption key the keyring was first
-- used with: a process given another key finds out when it starts, before
-- it seals anything that could never be opened again.
CREATE TABLE key_check (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    wrapped    bytea NOT NULL
);

GRANT SELECT, INSERT ON key_check TO mastery_app;
