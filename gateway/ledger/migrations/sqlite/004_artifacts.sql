-- The PostgreSQL ledger keeps replay artifacts in a table its replicas share;
-- one SQLite replica keeps them as files (gateway/artifacts/local.py). This
-- version exists so both dialects number their migrations alike.
SELECT 1;
