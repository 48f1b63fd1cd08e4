-- What operators did through the console, with what came of it (the console's audit trail).
create table console_action (
    id           bigserial primary key,
    operator     text not null,
    kind         text not null check (kind in ('reconcile', 'refund', 'close', 'redeliver_webhook', 'review_anomaly')),
    out_trade_no text,
    request      text not null,
    outcome      text not null,
    at           timestamptz not null
);
create index console_action_order on console_action (out_trade_no, id);
