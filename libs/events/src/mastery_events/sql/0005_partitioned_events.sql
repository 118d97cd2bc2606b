-- The log, partitioned by tenant: a district's log of hundreds of millions
-- of events keeps each append and each stream read to one partition's
-- indexes, a sixteenth of the whole (docs/deploy.md, "The events table at
-- district size").
--
-- By tenant and not by time, because PostgreSQL wants the partition key in
-- every unique key: the stream-version key already starts with the tenant,
-- so the optimistic check stays exact, and every request's transaction is
-- one tenant's. The row keeps its columns, its position and transaction id,
-- so checkpoints, seals and chain hashes stay valid.

-- The old table keeps the log while it is copied; its keys are dropped so
-- the new table can take their names, which the store's code knows.
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned
    DROP CONSTRAINT events_tenant_id_stream_id_stream_version_key,
    DROP CONSTRAINT events_event_id_key,
    DROP CONSTRAINT events_pkey;
DROP INDEX events_global_order;
-- The owner is bound by the tenant policy too; lifted for the copy.
ALTER TABLE events_unpartitioned NO FORCE ROW LEVEL SECURITY;

-- Every column the log has by now (the chain hash and the trace context
-- where their migrations ran), with the position still handed out by the
-- database.
CREATE TABLE events (
    LIKE events_unpartitioned INCLUDING DEFAULTS INCLUDING IDENTITY,
    -- A position is unique in the whole log; the key names the tenant as
    -- a partitioned table requires.
    PRIMARY KEY (tenant_id, position),
    CONSTRAINT events_tenant_id_stream_id_stream_version_key
        UNIQUE (tenant_id, stream_id, stream_version)
) PARTITION BY HASH (tenant_id);

DO $$
BEGIN
    FOR remainder IN 0..15 LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events '
            'FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
            format('events_p%s', lpad(remainder::text, 2, '0')),
            remainder
        );
        -- Reached only through the parent, whose policies bind; a
        -- partition named directly shows nothing to anyone but its owner.
        EXECUTE format(
            'ALTER TABLE %I ENABLE ROW LEVEL SECURITY',
            format('events_p%s', lpad(remainder::text, 2, '0'))
        );
        EXECUTE format(
            'ALTER TABLE %I FORCE ROW LEVEL SECURITY',
            format('events_p%s', lpad(remainder::text, 2, '0'))
        );
    END LOOP;
END
$$;

-- Followers of the whole log read in (transaction_id, position) order: a
-- merge of the partitions' own ordered indexes.
CREATE INDEX events_global_order ON events (transaction_id, position);
-- The relay finds the last event it published by id, without the tenant.
-- UUIDv7 ids are not checked for uniqueness across tenants any more.
CREATE INDEX events_event_id ON events (event_id);

INSERT INTO events OVERRIDING SYSTEM VALUE
SELECT * FROM events_unpartitioned ORDER BY position;

-- New positions continue after the copied ones.
SELECT setval(
    pg_get_serial_sequence('events', 'position'),
    coalesce(max(position), 1),
    max(position) IS NOT NULL
)
FROM events;

-- The hash chain's trigger, where the chain's migration brought it in,
-- moves to the new table; it was left off during the copy, which kept the
-- hashes as stored.
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_trigger
        WHERE tgname = 'events_chain'
          AND tgrelid = 'events_unpartitioned'::regclass
    ) THEN
        CREATE TRIGGER events_chain BEFORE INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION chain_event();
    END IF;
END
$$;

DROP TABLE events_unpartitioned;

-- The same rights as before: the application adds and reads its tenant's
-- events, the relay reads every tenant's.
SELECT isolate_by_tenant('events', 'SELECT, INSERT');
CREATE POLICY relay_reads_every_tenant ON events
    FOR SELECT TO mastery_relay USING (true);
GRANT SELECT ON events TO mastery_relay;
