-- A lighter write per event: dedupe keys become `<time>|<hash>`, the Unix
-- time in microseconds the item says it happened (18 digits) in front of
-- the hash, so that the unique index grows at its end instead of taking a
-- random page per stored event. A re-delivery after the upgrade must still
-- collapse: each stored key gets the prefix the new code gives its item.
-- Where the event was filed under the item's own time (occurred_at is not
-- the receipt time), that is its occurred_at.
UPDATE events
SET dedupe_key = lpad(round(extract(epoch FROM occurred_at) * 1000000)::bigint::text, 18, '0')
    || '|' || dedupe_key
WHERE occurred_at <> received_at
  AND occurred_at >= '2000-01-01'
  AND occurred_at < '10000-01-01'
  AND strpos(dedupe_key, '|') = 0;
-- The rest (items without a time, or with one that was not plausible when
-- they came) are finished by hookline right after the migrations, from
-- each stored item's own JSON (storage::migrations::finish_dedupe_keys).
INSERT INTO settings (name, value) VALUES ('dedupe_keys_to_finish', '1');
