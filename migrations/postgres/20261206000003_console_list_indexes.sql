-- The console's amount filter. Newest-first keyset pages walk payment_order_created and skip
-- what the filter rejects: cheap while matches are common (100–200 yuan, 5% of orders: 0.4 ms
-- on 1,000,000 orders), but a rare range reads the whole table (over 4,990 yuan: 85 ms; none
-- over 5,000: 150 ms). With this index the planner fetches a rare range and sorts it (0.2–0.5 ms)
-- and keeps the keyset scan for common ones. Its price: notify's UPDATE changes `status`, so it
-- is never HOT and already writes one entry into each of the table's six indexes; this is a
-- seventh. `alipay-notify-bench console-list` measures it (README, Performance).
create index payment_order_total on payment_order (total_fen);
