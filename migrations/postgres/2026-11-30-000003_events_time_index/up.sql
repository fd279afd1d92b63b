-- Newest-first paging over all events, by occurrence.
CREATE INDEX events_time ON events (occurred_at, id);
