-- Refunds, and the lease that keeps one instance at a time reconciling an order.
alter table payment_order add column refunded_fen integer not null default 0 check (refunded_fen >= 0);
alter table payment_order add column lease_until text;

create table refund (
    out_trade_no   text not null references payment_order (out_trade_no),
    out_request_no text not null,
    amount_fen     integer not null check (amount_fen > 0),
    reason         text,
    status         text not null check (status in ('pending', 'succeeded', 'failed')),
    created_at     text not null,
    updated_at     text not null,
    primary key (out_trade_no, out_request_no)
);
