DROP TRIGGER events_search_delete;
DROP TABLE search_progress;
DROP TABLE events_search;
