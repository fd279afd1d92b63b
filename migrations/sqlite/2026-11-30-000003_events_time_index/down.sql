DROP INDEX events_time;
