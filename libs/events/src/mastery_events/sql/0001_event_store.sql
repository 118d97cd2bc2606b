-- The event store of one service, created in that service's own schema
-- (the migration runner sets search_path to it).

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL UNIQUE,
    tenant_id       text NOT NULL,
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL CHECK (stream_version > 0),
    event_type      text NOT NULL,
    event_version   integer NOT NULL CHECK (event_version > 0),
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    correlation_id  uuid NOT NULL,
    causation_id    uuid,
    -- json, not jsonb: the stored bytes stay exactly as written.
    payload         json NOT NULL,
    UNIQUE (tenant_id, stream_id, stream_version)
);

-- Followers of the whole log read in (transaction_id, position) order.
CREATE INDEX events_global_order ON events (transaction_id, position);

-- Where each follower of this log (the relay, projections) has got to.
CREATE TABLE checkpoints (
    name            text PRIMARY KEY,
    transaction_id  xid8 NOT NULL,
    position        bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer of the bus has applied, so a redelivery is a no-op.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      uuid NOT NULL,
    tenant_id     text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
