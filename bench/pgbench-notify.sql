-- A batch of notifications as PgStore applies it (src/orders/postgres.rs: LOCK_ORDERS and
-- WRITE_BATCH): lock the batch's orders in key order, move them pending -> paid and write one
-- audit row each in one statement, commit. Run by bench/pgbench.sh with -D orders=N -D batch=B
-- over N seeded orders 'PGB1' .. 'PGB<N>'; each transaction pays B consecutive orders, so
-- notifications/s = tps x B. batch=1 is one commit per notification, as without group commit.
-- Differences from the service, all immaterial to the database's cost: the new values come from
-- generate_series() and now() rather than from bound arrays, and the raw body is made on the
-- server (about 1.2 KB, as ours).
\set n random(1, :orders - :batch + 1)
\set last :n + :batch - 1
begin;
select out_trade_no, subject, body, total_fen, status, trade_no, buyer_id, alipay_trade_status,
       refunded_fen, created_at, expires_at, paid_at, closed_at
  from payment_order
 where out_trade_no = any(array(select 'PGB' || g from generate_series(:n::int, :last::int) g))
 order by out_trade_no for update;
with changed as (
  update payment_order as o set status = 'paid', alipay_trade_status = 'TRADE_SUCCESS',
         trade_no = c.trade_no, buyer_id = '2088102177846880', paid_at = now(), closed_at = null,
         refunded_fen = 0, updated_at = now()
    from (select 'PGB' || g as out_trade_no, '2026112822001PGB' || g as trade_no
            from generate_series(:n::int, :last::int) g) as c
   where o.out_trade_no = c.out_trade_no)
insert into notification (source, notify_id, out_trade_no, trade_status, verdict, reason,
                          raw_body, received_at)
select 'notify', '2026112800222231005PGB' || g, 'PGB' || g, 'TRADE_SUCCESS', 'applied', null,
       convert_to(repeat('a', 1200), 'UTF8'), now()
  from generate_series(:n::int, :last::int) g;
commit;
