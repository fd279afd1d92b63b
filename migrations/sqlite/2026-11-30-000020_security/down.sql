DROP INDEX notifications_recipient;
DROP TABLE admin_sessions;
