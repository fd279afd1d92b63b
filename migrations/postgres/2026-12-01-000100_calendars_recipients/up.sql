-- Named business calendars (IANA zone, weekly hours, holidays) that timer
-- rules share (`calendar = "support-berlin"`, `quiet_hours = "nights"`),
-- and recipients with quiet hours of their own (a calendar's name). The
-- definition is JSON the notifier validates; the names a rule or recipient
-- uses are checked by the notifier too, so that a refusal names them.
CREATE TABLE calendars (
    name TEXT PRIMARY KEY NOT NULL,
    definition TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE recipients (
    email TEXT PRIMARY KEY NOT NULL,
    quiet_hours TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

