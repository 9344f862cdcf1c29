-- A reservation adds up its tenant's live reservations under the tenant's
-- advisory lock. With the amounts in the index that sum is an index-only
-- scan instead of a heap read per reservation (SQLite's 007 keeps a running
-- total by trigger instead; here every settle and release would then contend
-- on one row per tenant across replicas).
CREATE INDEX reservations_tenant_expires_remaining
    ON reservations (tenant, expires_at) INCLUDE (remaining_micros);
DROP INDEX IF EXISTS reservations_tenant_expires;
