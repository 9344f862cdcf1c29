-- Ledger schema for PostgreSQL. Money is BIGINT micro-USD; times TIMESTAMPTZ.

-- Admin overrides of the policy's limit, per tenant and period.
CREATE TABLE budget_overrides (
    tenant       TEXT   NOT NULL,
    period       TEXT   NOT NULL CHECK (period IN ('day', 'month', 'total')),
    limit_micros BIGINT NOT NULL CHECK (limit_micros >= 0),
    PRIMARY KEY (tenant, period)
);

-- Spent per window, maintained by settle() in the usage insert's transaction,
-- so reading spent is one primary-key lookup.
CREATE TABLE spend_counters (
    tenant       TEXT        NOT NULL,
    period       TEXT        NOT NULL CHECK (period IN ('day', 'month', 'total')),
    window_start TIMESTAMPTZ NOT NULL,
    spent_micros BIGINT      NOT NULL CHECK (spent_micros >= 0),
    PRIMARY KEY (tenant, period, window_start)
);

-- Budget held by in-flight requests; counts only while expires_at > now.
CREATE TABLE reservations (
    id               TEXT        PRIMARY KEY,
    tenant           TEXT        NOT NULL,
    request_id       TEXT        NOT NULL,
    amount_micros    BIGINT      NOT NULL CHECK (amount_micros >= 0),
    remaining_micros BIGINT      NOT NULL CHECK (remaining_micros >= 0),
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX reservations_tenant_expires ON reservations (tenant, expires_at);
CREATE INDEX reservations_expires ON reservations (expires_at);

-- One row per delivered image; the unique key makes settle idempotent.
CREATE TABLE usage_records (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant         TEXT        NOT NULL,
    request_id     TEXT        NOT NULL,
    image_index    INTEGER     NOT NULL CHECK (image_index >= 0),
    model          TEXT        NOT NULL,
    task           TEXT        NOT NULL,
    width          INTEGER     NOT NULL,
    height         INTEGER     NOT NULL,
    quality        TEXT        NOT NULL,
    cost_micros    BIGINT      NOT NULL CHECK (cost_micros >= 0),
    image_sha256   TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    reservation_id TEXT,
    UNIQUE (tenant, request_id, image_index)
);
CREATE INDEX usage_records_tenant_created ON usage_records (tenant, created_at);
CREATE INDEX usage_records_created ON usage_records (created_at);

-- Idempotency keys per tenant: 'running' under a lease, then 'done' with the result.
CREATE TABLE idempotency_keys (
    tenant       TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    state        TEXT        NOT NULL CHECK (state IN ('running', 'done')),
    result       BYTEA,
    expires_at   TIMESTAMPTZ,
    PRIMARY KEY (tenant, key)
);
