DROP INDEX notifications_conversation;
DROP INDEX notifications_event;
DROP INDEX notifications_throttle;
DROP INDEX notifications_due;
DROP TABLE notifications;
DROP TABLE rules;
