-- No index here: Postgres gets payment_order (total_fen) for rare amount ranges. SQLite has no
-- statistics unless ANALYZE runs, and without them it chose that index for every two-sided range
-- (100–200 yuan, 5% of 1,000,000 orders: 0.7 ms through the keyset scan, 88 ms through the
-- index and a sort) and still not for the rare one-sided ranges it was meant for. The rare
-- ranges stay a scan on SQLite (README, Performance: "Console list on 1,000,000 orders").
select 1;
