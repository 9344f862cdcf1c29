-- Requests refused before any spend (policy deny, moderation block, content
-- filter): a record of the refusal, never a charge. Times are INTEGER
-- microseconds since the Unix epoch, UTC, as in 001.
CREATE TABLE denials (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    reason     TEXT    NOT NULL CHECK (reason <> ''),
    rule       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX denials_tenant_created ON denials (tenant, created_at);
CREATE INDEX denials_created ON denials (created_at);
