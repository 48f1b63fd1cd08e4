-- The console's amount filter. The store counts a range in this index before it lists
-- (SqliteStore::amount_path): a rare range is fetched through it and sorted, a common one walks
-- payment_order_created newest first with the index kept out of the plan. Left to SQLite's own
-- planner, without statistics, it chose wrongly both ways (20261206000003). Notify's UPDATE
-- leaves total_fen alone, and SQLite only rewrites the indexes whose columns change, so this
-- costs an entry when an order is created and nothing when it is paid.
create index payment_order_total on payment_order (total_fen);
