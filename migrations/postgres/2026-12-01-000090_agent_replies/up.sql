-- The overview's "time from handover to the agent's first reply": for each
-- handover, the first message an agent wrote in that conversation after it
-- is one seek here, however long the conversation. Partial: only agents'
-- messages are in it, so ingest pays for one entry per agent message.
CREATE INDEX events_agent_messages ON events (conversation_key, occurred_at, id)
    WHERE event_type = 'message' AND actor_type = 'user';
