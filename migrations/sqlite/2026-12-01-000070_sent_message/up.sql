-- The Emails page shows each email as it was sent: the message (headers
-- and MIME parts, as given to the SMTP server or written to the .eml
-- file) is kept with its record, at most 1 MiB (larger ones are not kept).
ALTER TABLE notifications ADD COLUMN message TEXT;
