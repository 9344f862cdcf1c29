-- The admin audit log: one row per admin action (SetBudget, TopUpBudget,
-- ReloadPolicy), with a non-secret identity of the admin key, the outcome,
-- and for budgets the cap before and after (NULL: uncapped / not a budget
-- action). Times are INTEGER microseconds since the Unix epoch, UTC, as in
-- 001. Independent of 005: either may be applied first.
CREATE TABLE admin_audit (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    actor             TEXT    NOT NULL CHECK (actor <> ''),
    action            TEXT    NOT NULL CHECK (action <> ''),
    outcome           TEXT    NOT NULL CHECK (outcome <> ''),
    created_at        INTEGER NOT NULL,
    tenant            TEXT    NOT NULL,
    period            TEXT    NOT NULL CHECK (period IN ('', 'day', 'month', 'total')),
    old_limit_micros  INTEGER,
    new_limit_micros  INTEGER,
    amount_micros     INTEGER,
    old_policy_digest TEXT    NOT NULL,
    policy_digest     TEXT    NOT NULL,
    detail            TEXT    NOT NULL
) STRICT;
CREATE INDEX admin_audit_created ON admin_audit (created_at);
CREATE INDEX admin_audit_tenant_created ON admin_audit (tenant, created_at);
