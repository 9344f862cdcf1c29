-- Provenance of each delivered image: the id its invisible watermark carries
-- and the C2PA manifest it was signed with (the reader's JSON), so a copy
-- whose metadata was stripped can be traced back to its record and manifest.
ALTER TABLE usage_records ADD COLUMN watermark_id TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN manifest_json TEXT NOT NULL DEFAULT '';
CREATE INDEX usage_records_watermark ON usage_records (watermark_id) WHERE watermark_id <> '';
