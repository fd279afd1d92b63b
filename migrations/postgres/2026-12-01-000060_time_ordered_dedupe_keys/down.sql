UPDATE events
SET dedupe_key = substr(dedupe_key, strpos(dedupe_key, '|') + 1)
WHERE strpos(dedupe_key, '|') > 0;
DELETE FROM settings WHERE name = 'dedupe_keys_to_finish';
