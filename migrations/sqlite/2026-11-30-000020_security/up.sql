-- Admin sessions, kept server-side so that logging out or rotating the
-- admin token ends them everywhere. Only a SHA-256 of the session id is
-- stored: a copy of the database does not let anyone log in.
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

-- The per-recipient hourly cap counts a recipient's recent emails.
CREATE INDEX notifications_recipient ON notifications (recipient, created_at);

-- Sessions no longer use a signing secret.
DELETE FROM settings WHERE name = 'session_secret';
