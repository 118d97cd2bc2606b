-- Tamper evidence for the log: every event is chained to the one before it
-- in its stream, and a sealing job chains every tenant's events in the
-- global order (see docs/audit.md).

-- The chain hash of an event: SHA-256 over the previous event's chain hash
-- in the same stream (empty for a stream's first event) and every stored
-- field but the two the database hands out, ``position`` and
-- ``transaction_id``, so an export imported elsewhere chains to the very
-- same hashes. Each field is length-prefixed, or a fixed-width binary form,
-- so no two different events give the same bytes; times are their binary
-- form, so the session's time zone changes nothing.
CREATE FUNCTION chained_hash(
    previous bytea,
    event_id uuid,
    tenant_id text,
    stream_id text,
    stream_version integer,
    event_type text,
    event_version integer,
    occurred_at timestamptz,
    recorded_at timestamptz,
    actor text,
    correlation_id uuid,
    causation_id uuid,
    payload json
) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE
RETURN sha256(
    int4send(octet_length(previous)) || previous
    || uuid_send(event_id)
    || int4send(octet_length(tenant_id)) || convert_to(tenant_id, 'UTF8')
    || int4send(octet_length(stream_id)) || convert_to(stream_id, 'UTF8')
    || int4send(stream_version)
    || int4send(octet_length(event_type)) || convert_to(event_type, 'UTF8')
    || int4send(event_version)
    || timestamptz_send(occurred_at)
    || timestamptz_send(recorded_at)
    || int4send(octet_length(actor)) || convert_to(actor, 'UTF8')
    || uuid_send(correlation_id)
    || coalesce('\x01'::bytea || uuid_send(causation_id), '\x00'::bytea)
    || int4send(octet_length(payload::text)) || convert_to(payload::text, 'UTF8')
);

ALTER TABLE events ADD COLUMN chain_hash bytea;

-- Chain the events stored before this migration, stream by stream. The
-- owner is bound by the tenant policy too, so it is lifted while the
-- backfill runs, inside this migration's transaction.
ALTER TABLE events NO FORCE ROW LEVEL SECURITY;
DO $$
DECLARE
    event record;
    previous bytea := '\x';
BEGIN
    FOR event IN
        SELECT * FROM events ORDER BY tenant_id, stream_id, stream_version
    LOOP
        IF event.stream_version = 1 THEN
            previous := '\x';
        END IF;
        previous := chained_hash(
            previous, event.event_id, event.tenant_id, event.stream_id,
            event.stream_version, event.event_type, event.event_version,
            event.occurred_at, event.recorded_at, event.actor,
            event.correlation_id, event.causation_id, event.payload
        );
        UPDATE events SET chain_hash = previous
        WHERE position = event.position;
    END LOOP;
END
$$;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
ALTER TABLE events ALTER COLUMN chain_hash SET NOT NULL;

-- Every insert is chained as it is written, within the append's own
-- statement. A row-level BEFORE trigger sees the rows its statement wrote
-- before, so an append of several events to one stream chains them in
-- order. The names are written in qualified, as the trigger runs with the
-- writer's search_path.
DO $$
BEGIN
    EXECUTE format(
        $function$
        CREATE FUNCTION %1$I.chain_event() RETURNS trigger
        LANGUAGE plpgsql AS $body$
        DECLARE
            previous bytea := '\x';
        BEGIN
            IF NEW.stream_version > 1 THEN
                SELECT chain_hash INTO previous FROM %1$I.events
                WHERE tenant_id = NEW.tenant_id
                  AND stream_id = NEW.stream_id
                  AND stream_version = NEW.stream_version - 1;
                IF NOT FOUND THEN
                    RAISE EXCEPTION
                        'stream %% has no version %% to chain version %% to',
                        NEW.stream_id, NEW.stream_version - 1,
                        NEW.stream_version
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
            END IF;
            NEW.chain_hash := %1$I.chained_hash(
                previous, NEW.event_id, NEW.tenant_id, NEW.stream_id,
                NEW.stream_version, NEW.event_type, NEW.event_version,
                NEW.occurred_at, NEW.recorded_at, NEW.actor,
                NEW.correlation_id, NEW.causation_id, NEW.payload
            );
            RETURN NEW;
        END
        $body$
        $function$,
        current_schema()
    );
END
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION chain_event();

-- The seals: one row per event, in each tenant's global order, each hashing
-- the one before, so deleting or moving an event that was sealed shows,
-- even the last of its stream. Written by ``mastery audit seal``.
CREATE TABLE event_seals (
    tenant_id       text NOT NULL,
    seal_number     bigint NOT NULL CHECK (seal_number > 0),
    event_id        uuid NOT NULL,
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL,
    position        bigint NOT NULL,
    transaction_id  xid8 NOT NULL,
    chain_hash      bytea NOT NULL,
    seal_hash       bytea NOT NULL,
    sealed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seal_number)
);

SELECT isolate_by_tenant('event_seals', 'SELECT, INSERT');
