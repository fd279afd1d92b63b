ALTER TABLE notifications DROP COLUMN message;
