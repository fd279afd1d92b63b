ALTER TABLE events DROP COLUMN handed_to;
