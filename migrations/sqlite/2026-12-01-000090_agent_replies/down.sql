DROP INDEX events_agent_messages;
