-- Every item Swiftsell delivered, once, with its raw JSON as received.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    message_type TEXT,
    conversation_key TEXT,
    conversation_id BIGINT,
    account_id BIGINT,
    bot_id BIGINT,
    visitor_key TEXT,
    visitor_id BIGINT,
    actor_type TEXT,
    actor_email TEXT,
    occurred_at TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    summary TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX events_conversation_time ON events (conversation_key, occurred_at, id);
CREATE INDEX events_type_time ON events (event_type, occurred_at, id);
CREATE INDEX events_received ON events (received_at, id);

-- The current state of each conversation, kept in the ingest transaction.
-- Each *_at column is the occurred_at of the event that set the fields
-- next to it, so that an older event arriving late does not overwrite them.
CREATE TABLE conversations (
    key TEXT PRIMARY KEY NOT NULL,
    conversation_id BIGINT,
    account_id BIGINT,
    bot_id BIGINT,
    visitor_key TEXT,
    visitor_id BIGINT,
    title TEXT,
    channel TEXT,
    conversation_url TEXT,
    visitor_name TEXT,
    visitor_email TEXT,
    visitor_at TIMESTAMP,
    status TEXT NOT NULL DEFAULT 'open',
    status_at TIMESTAMP,
    assignee_type TEXT,
    assignee_email TEXT,
    assignee_at TIMESTAMP,
    created_at TIMESTAMP,
    first_event_at TIMESTAMP NOT NULL,
    last_event_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    message_count BIGINT NOT NULL DEFAULT 0,
    event_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX conversations_last_event ON conversations (last_event_at, key);

-- Values hookline generates once and keeps (the webhook token).
CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
