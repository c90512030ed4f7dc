-- A card typed at the cashier is no longer stored with the buyer's choice (it waits in memory
-- until the payment): remove the ones an earlier sandbox kept.
UPDATE cashier_sessions SET choice = json_remove(choice, '$.card')
 WHERE choice IS NOT NULL AND json_valid(choice) AND json_extract(choice, '$.card') IS NOT NULL;
