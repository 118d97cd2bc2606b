"""The reports service's own SQL migrations, ``NNNN_name.sql``, applied in its
schema after the event store's."""
