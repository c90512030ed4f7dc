-- An account's balance is the sum of its ledger entries in and out. Without these, every payment
-- summed the whole ledger for each of the buyer's and the merchant's accounts, so a payment cost
-- grew with every payment before it. The amount is in the index, so the sums read the index only.
CREATE INDEX ledger_to_account ON ledger (to_acct, amount_fen);
CREATE INDEX ledger_from_account ON ledger (from_acct, amount_fen);
