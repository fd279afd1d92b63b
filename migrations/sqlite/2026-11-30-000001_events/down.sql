DROP TABLE settings;
DROP INDEX conversations_last_event;
DROP TABLE conversations;
DROP INDEX events_received;
DROP INDEX events_type_time;
DROP INDEX events_conversation_time;
DROP TABLE events;
