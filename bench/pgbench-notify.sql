-- One notification as PgStore::apply does it (src/orders/postgres.rs, SQL in
-- src/orders/repository.rs): lock the order row, move it pending -> paid, write the audit row,
-- commit. Run by bench/pgbench.sh with -D orders=N over N seeded orders 'PGB1' .. 'PGB<N>'.
-- Differences from the service, all immaterial to the database's cost: times come from now()
-- rather than bound from Rust, and the raw body is made on the server (about 1.2 KB, as ours).
\set n random(1, :orders)
begin;
select out_trade_no, subject, body, total_fen, status, trade_no, buyer_id, alipay_trade_status,
       refunded_fen, created_at, expires_at, paid_at, closed_at
  from payment_order where out_trade_no = 'PGB' || :n for update;
update payment_order set status = 'paid', alipay_trade_status = 'TRADE_SUCCESS',
       trade_no = coalesce(trade_no, '2026112822001PGB' || :n),
       buyer_id = coalesce(buyer_id, '2088102177846880'),
       paid_at = coalesce(paid_at, now()), closed_at = coalesce(closed_at, null),
       updated_at = now(), refunded_fen = 0
 where out_trade_no = 'PGB' || :n;
insert into notification (source, notify_id, out_trade_no, trade_status, verdict, reason,
                          raw_body, received_at)
values ('notify', '2026112800222231005PGB' || :n, 'PGB' || :n, 'TRADE_SUCCESS', 'applied', null,
        convert_to(repeat('a', 1200), 'UTF8'), now());
commit;
