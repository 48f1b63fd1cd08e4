#!/usr/bin/env bash
# Two builds of the alipay-notify service, measured alternately in the same minutes (the machine is shared and
# its speed drifts, so only figures from one round compare): per round SQLite before/after,
# Postgres before/after, then pgbench with BATCH=1 and BATCH=16 on the same server.
#
#   cp target/release/alipay-notify /tmp/before   # … on the old commit, then on the new one:
#   bash bench/compare.sh /tmp/before target/release/alipay-notify
#
# Both are loaded by the same generator, target/release/alipay-notify-bench (BENCH to change it),
# which starts each as `serve` through --service-binary.
#
# ROUNDS (default 2), ADMIN_URL (default the tests' server) and BENCH_ARGS (e.g. "--orders 20000")
# adjust it. Each run's JSON report is kept in OUT (default a temp dir), one summary line printed.
set -euo pipefail
cd "$(dirname "$0")/.."

before="$1"
after="$2"
ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ROUNDS="${ROUNDS:-2}"
BENCH="${BENCH:-target/release/alipay-notify-bench}"
OUT="${OUT:-$(mktemp -d)}"
read -r -a extra <<< "${BENCH_ARGS:-}"

summary='import json, sys
r = json.load(open(sys.argv[1])); l = r["latency_ms"]; api = r.get("orders_api") or {}
fmt = lambda v, f: "-" if v is None else f % v
print("  %.0f/s  p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f ms  cpu %s us  gen %s us  rss %s MiB"
      "  per commit %s  non-success %d  check %s  load %s  api %s/s %s us"
      % (r["requests_per_second"], l["p50"], l["p90"], l["p99"], l["p99_9"], l["max"],
         fmt(r["service_cpu_us_per_request"], "%.0f"), fmt(r["load_generator_cpu_us_per_request"], "%.0f"),
         fmt(r["service_peak_rss_mib"], "%.1f"), fmt(r["notifications_per_commit"], "%.1f"),
         r["non_success"], "passed" if r["passed"] else "FAILED", fmt(r["load_average"], "%.2f"),
         fmt(api.get("orders_per_second"), "%.0f"), fmt(api.get("service_cpu_us_per_order"), "%.0f")))'

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round, $(date -u +%FT%TZ), load $(cut -d' ' -f1 /proc/loadavg)"
  for db in sqlite postgres; do
    args=("${extra[@]}")
    [ "$db" = postgres ] && args+=(--database "$ADMIN_URL")
    for which in before after; do
      bin="$before"; [ "$which" = after ] && bin="$after"
      report="$OUT/round$round-$db-$which.json"
      "$BENCH" --service-binary "$bin" --json "${args[@]}" > "$report" 2>/dev/null || true
      echo "$db $which:"
      python3 -c "$summary" "$report"
    done
  done
  for batch in 1 16; do
    echo "pgbench BATCH=$batch: $(BATCH=$batch bash bench/pgbench.sh 2>&1 | grep 'notifications/s')"
  done
done
echo "reports in $OUT"
