-- A lighter write per event: no query reads events by their receipt time
-- (history, retention and exports go by occurred_at or id), so the index
-- on it only cost a random page write per stored event.
DROP INDEX events_received;
