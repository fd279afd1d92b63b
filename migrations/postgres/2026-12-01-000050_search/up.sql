-- Word search over each event's summary and raw JSON (the `q=` filter):
-- the words of both (anything but letters and digits separates words, as
-- in SQLite's index; the first 64 KiB of the raw JSON), kept by the
-- database on every insert, in a GIN index.
ALTER TABLE events ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector(
        'simple'::regconfig,
        regexp_replace(summary || ' ' || left(raw, 65536), '[^[:alnum:]]+', ' ', 'g')
    )
) STORED;
CREATE INDEX events_search ON events USING gin (search);
