-- Time-based alerts. An episode per (timer rule, conversation): opened by
-- the rule's start event, ended by a stop event; the number goes up with
-- each new episode. Written in the ingest transaction.
CREATE TABLE timer_episodes (
    rule_id BIGINT NOT NULL,
    conversation_key TEXT NOT NULL,
    episode INTEGER NOT NULL,
    is_open BOOLEAN NOT NULL,
    -- Where the episode's clock starts (the start event's time).
    started_at TIMESTAMP NOT NULL,
    start_event_id BIGINT,
    -- The newest start and stop seen (event times), so that events
    -- arriving out of order neither reopen nor end the wrong episode.
    last_start_at TIMESTAMP NOT NULL,
    last_stop_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (rule_id, conversation_key)
);

-- One row per (rule, conversation, episode, step): armed with a due time,
-- claimed with a lease (firing), then fired (its email queued in the same
-- transaction), cancelled (a stop event, the rule changed or went), or
-- missed (overdue past max_lateness: summarised instead).
CREATE TABLE timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id BIGINT NOT NULL,
    rule_name TEXT NOT NULL,
    conversation_key TEXT NOT NULL,
    episode INTEGER NOT NULL,
    step INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    event_id BIGINT,
    recipients TEXT NOT NULL,
    template TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    fired_at TIMESTAMP,
    reason TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (rule_id, conversation_key, episode, step)
);
CREATE INDEX timers_due ON timers (status, due_at);
CREATE INDEX timers_conversation ON timers (conversation_key, id);
CREATE INDEX timers_rule ON timers (rule_id, status);
