-- Share links as the reports service's own events left them. Only a hash
-- of each token is kept; the token itself was shown once, to its creator.

CREATE TABLE share_links (
    tenant_id     text NOT NULL,
    share_link_id uuid NOT NULL,
    token_hash    text NOT NULL,
    student_id    text NOT NULL,
    section_ids   text[] NOT NULL,
    term_id       text,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    views         integer NOT NULL DEFAULT 0,
    last_viewed_at timestamptz,
    stream_version integer NOT NULL,
    PRIMARY KEY (tenant_id, share_link_id),
    UNIQUE (tenant_id, token_hash)
);

CREATE INDEX share_links_by_student ON share_links (tenant_id, student_id);

SELECT isolate_by_tenant('share_links');
