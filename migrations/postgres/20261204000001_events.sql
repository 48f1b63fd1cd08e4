-- The outbox: one event per committed state change, written in the transaction that made the
-- change, and one delivery per event and webhook endpoint, with every attempt kept.
create table event (
    -- The order events are read in: `tx` is the writing transaction, so that a reader can leave
    -- out transactions still in flight (a later sequence number may commit before an earlier one).
    seq          bigserial not null unique,
    tx           bigint not null default (pg_current_xact_id()::text::bigint),
    id           text primary key,
    type         text not null,
    out_trade_no text,
    -- Set for events that must not repeat (an anomaly resent by Alipay): the second is not written.
    dedupe_key   text unique,
    payload      text not null,
    created_at   timestamptz not null
);
create index event_feed on event (tx, seq);
create index event_order on event (out_trade_no, seq);

create table webhook_delivery (
    event_id        text not null references event (id),
    -- The event's seq, copied so that leasing finds each order's oldest pending delivery through
    -- an index alone, fast even before the planner has statistics.
    event_seq       bigint not null,
    endpoint        text not null,
    out_trade_no    text,
    status          text not null check (status in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    next_attempt_at timestamptz not null,
    lease_until     timestamptz,
    updated_at      timestamptz not null,
    primary key (event_id, endpoint)
);
create index webhook_delivery_due on webhook_delivery (endpoint, event_seq) where status = 'pending';
create index webhook_delivery_order on webhook_delivery (endpoint, out_trade_no, event_seq) where status = 'pending';

create table webhook_attempt (
    id            bigserial primary key,
    event_id      text not null,
    endpoint      text not null,
    attempted_at  timestamptz not null,
    latency_ms    bigint not null,
    status_code   integer,
    error         text,
    response_body text,
    foreign key (event_id, endpoint) references webhook_delivery (event_id, endpoint)
);
create index webhook_attempt_delivery on webhook_attempt (event_id, endpoint, id);
