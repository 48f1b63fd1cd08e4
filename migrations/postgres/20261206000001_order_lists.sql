-- Lists people read (the console): newest first in keyset pages, and finding an order by any of
-- its numbers. out_trade_no already has its primary key.
create index payment_order_created on payment_order (created_at, out_trade_no);
create index payment_order_trade_no on payment_order (trade_no);
create index payment_order_buyer_id on payment_order (buyer_id);
