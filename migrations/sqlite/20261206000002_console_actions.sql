-- What operators did through the console, with what came of it (the console's audit trail).
create table console_action (
    id           integer primary key autoincrement,
    operator     text not null,
    kind         text not null check (kind in ('reconcile', 'refund', 'close', 'redeliver_webhook', 'review_anomaly')),
    out_trade_no text,
    request      text not null,
    outcome      text not null,
    at           text not null
);
create index console_action_order on console_action (out_trade_no, id);

-- An operator's look at an anomaly (a genuine message that disagreed with our records).
create table anomaly_review (
    notification_id bigint primary key references notification (id),
    operator        text not null,
    note            text not null,
    at              text not null
);

-- The overview: messages by hour, the most overdue pending order.
create index notification_received on notification (received_at);
create index payment_order_status_expires on payment_order (status, expires_at);
