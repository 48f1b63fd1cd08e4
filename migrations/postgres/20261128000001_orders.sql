-- Orders and the audit log of every verified message about them. Money is integer fen.
create table payment_order (
    out_trade_no        text primary key,
    subject             text not null,
    body                text,
    total_fen           bigint not null check (total_fen > 0),
    status              text not null check (status in ('pending', 'paid', 'closed', 'refunded')),
    trade_no            text,
    buyer_id            text,
    alipay_trade_status text,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    expires_at          timestamptz not null,
    paid_at             timestamptz,
    closed_at           timestamptz
);
create index payment_order_status_created on payment_order (status, created_at);

create table notification (
    id           bigserial primary key,
    source       text not null,
    notify_id    text,
    out_trade_no text,
    trade_status text,
    verdict      text not null check (verdict in ('applied', 'duplicate', 'ignored', 'anomaly')),
    reason       text,
    raw_body     bytea not null,
    received_at  timestamptz not null
);
create index notification_out_trade_no on notification (out_trade_no);
create index notification_verdict on notification (verdict, received_at);
