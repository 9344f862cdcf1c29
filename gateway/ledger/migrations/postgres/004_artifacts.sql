-- Delivered image bytes kept for idempotent replay, shared by every replica
-- (gateway/artifacts/postgres.py). Names are <tenant>/<key hash>/<request id>/<index>.
CREATE TABLE artifacts (
    name       TEXT        PRIMARY KEY,
    data       BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
