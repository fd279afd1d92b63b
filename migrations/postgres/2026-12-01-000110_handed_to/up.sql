-- Who each handover went to (the agent's email, or '' for no agent),
-- written at ingest from the typed event, so that the overview's reply
-- times do not read and parse every handover's raw JSON. Rows stored
-- before this migration keep NULL; the overview reads those from `raw`.
ALTER TABLE events ADD COLUMN handed_to TEXT;
