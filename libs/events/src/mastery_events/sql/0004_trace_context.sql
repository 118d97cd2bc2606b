-- The W3C trace context of the request that appended an event, so the
-- relay can hand it on with the message and a consumer's work joins that
-- request's trace. NULL when tracing was off. It is operational metadata,
-- not part of the record, so the hash chain leaves it out; an export and
-- an import carry it as they find it.
ALTER TABLE events ADD COLUMN traceparent text;
