DROP TABLE recipients;
DROP TABLE calendars;
