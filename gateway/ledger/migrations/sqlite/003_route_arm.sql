-- The A/B arm ("<rule>:<model>") of the policy split that routed the request;
-- '' when no split applied. Kept per image so an experiment's spend can be
-- read straight from the ledger.
ALTER TABLE usage_records ADD COLUMN route_arm TEXT NOT NULL DEFAULT '';
