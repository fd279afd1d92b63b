-- Alert rules: the definition (on, all, any, to, template, throttle) is the
-- rule's JSON, validated by hookline before it is stored.
CREATE TABLE rules (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    definition TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The outbox: one row per (rule, event, recipient), written in the ingest
-- transaction. Status: queued, sending, sent, failed (will retry), dead
-- (gave up), suppressed (throttled), skipped (no valid recipient).
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    rule_id BIGINT,
    rule_name TEXT NOT NULL,
    event_id BIGINT,
    conversation_key TEXT,
    recipient TEXT NOT NULL,
    template TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    last_error TEXT,
    smtp_response TEXT,
    subject TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_throttle ON notifications (rule_name, conversation_key, recipient, created_at);
CREATE INDEX notifications_event ON notifications (event_id);
CREATE INDEX notifications_conversation ON notifications (conversation_key, id);
