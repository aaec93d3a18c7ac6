-- Balance query index, sqlite flavour. Keep in step with the other backend's 0014_balance_index.sql.
-- A seller's balance sums the wallet movements of its recent captures; without this index the
-- query read every movement of every seller (measured: 311 balance queries/s with 2,000 sellers,
-- 80/s with 10,000). Found by seller and currency, it reads only that seller's movements.
CREATE INDEX wallet_movement_seller ON wallet_movement (seller_account, currency);
