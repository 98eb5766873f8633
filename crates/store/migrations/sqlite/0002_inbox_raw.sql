-- The vendor's body as received, beside the canonical JSON intake plans from.
ALTER TABLE inbox ADD COLUMN raw TEXT;
