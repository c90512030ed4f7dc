-- The search index gains the `inner` column (the tails of each word, see shop-api's search
-- module), so "vitamin" finds "Multivitamin". The index is refilled from the products by the
-- migration's hook: its terms are computed by the shop, not by SQL.
DROP TABLE product_search;
CREATE VIRTUAL TABLE product_search USING fts5 (product_id UNINDEXED, terms, inner, tokenize = 'unicode61');
