-- Word search over each event's summary and raw JSON (the `q=` filter).
-- Contentless: the text stays in `events`; the index holds only the words
-- and row ids (detail=none: no positions, so no phrase queries, which `q=`
-- does not use). Filled by the writer while it has nothing else to do, in
-- batches, up to `search_progress.indexed_through`; events above it are
-- searched by a scan until they are indexed.
CREATE VIRTUAL TABLE events_search USING fts5(
    body,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE search_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through BIGINT NOT NULL
);
INSERT INTO search_progress (id, indexed_through) VALUES (1, 0);
-- Events deleted (retention, purge, erase) leave the index with them.
CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN
    DELETE FROM events_search WHERE rowid = old.id;
END;
