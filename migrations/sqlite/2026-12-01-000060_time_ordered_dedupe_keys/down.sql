UPDATE events
SET dedupe_key = substr(dedupe_key, instr(dedupe_key, '|') + 1)
WHERE instr(dedupe_key, '|') > 0;
DELETE FROM settings WHERE name = 'dedupe_keys_to_finish';
