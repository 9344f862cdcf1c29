-- Requests refused before any spend (policy deny, moderation block, content
-- filter): a record of the refusal, never a charge.
CREATE TABLE denials (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant     TEXT        NOT NULL,
    request_id TEXT        NOT NULL,
    reason     TEXT        NOT NULL CHECK (reason <> ''),
    rule       TEXT        NOT NULL,
    message    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX denials_tenant_created ON denials (tenant, created_at);
CREATE INDEX denials_created ON denials (created_at);
