#!/usr/bin/env bash
# The database's ceiling for the notify path: pgbench running bench/pgbench-notify.sql (the
# statements PgStore makes per batch of notifications) on a fresh database with ORDERS pending
# orders, so that "our notify/s" from `alipay-notify-bench --database postgres://…` can be read
# against "pgbench notifications/s" (tps x BATCH) on the same server.
#
#   bash bench/pgbench.sh                      # 100000 orders, -c 16 -j 2 -T 10, BATCH=1
#   BATCH=8 bash bench/pgbench.sh              # 8 notifications per transaction
#   ORDERS=20000 CLIENTS=10 bash bench/pgbench.sh
#
# ADMIN_URL names the server (a database there to connect to; default the tests' server). A
# database alipay_notify_pgbench_<pid> is created there and dropped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ORDERS="${ORDERS:-100000}"
CLIENTS="${CLIENTS:-16}"
JOBS="${JOBS:-2}"
DURATION="${DURATION:-10}"
BATCH="${BATCH:-1}"

db="alipay_notify_pgbench_$$"
url="${ADMIN_URL%/*}/$db"
psql "$ADMIN_URL" -q -v ON_ERROR_STOP=1 -c "create database $db"
trap 'psql "$ADMIN_URL" -q -c "drop database if exists $db with (force)"' EXIT

for migration in migrations/postgres/*.sql; do
  psql "$url" -q -v ON_ERROR_STOP=1 -f "$migration"
done
psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
insert into payment_order (out_trade_no, subject, total_fen, status, created_at, updated_at,
                           expires_at)
select 'PGB' || n, 'Oolong tea', 12880, 'pending', now(), now(), now() + interval '2 hours'
  from generate_series(1, $ORDERS) as n;
vacuum analyze;
SQL

echo "pgbench: $ORDERS orders, batches of $BATCH, -c $CLIENTS -j $JOBS -T $DURATION, prepared statements (as sqlx)"
out="$(pgbench -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$DURATION" -D orders="$ORDERS" \
  -D batch="$BATCH" -f bench/pgbench-notify.sql "$url")"
echo "$out"
tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")"
[ -n "$tps" ] && echo "notifications/s (tps x $BATCH): $(awk -v t="$tps" -v b="$BATCH" 'BEGIN { printf "%.0f", t * b }')"
psql "$url" -At -c "select 'audit rows: ' || count(*) || ', paid orders: ' ||
  (select count(*) from payment_order where status = 'paid') from notification"
