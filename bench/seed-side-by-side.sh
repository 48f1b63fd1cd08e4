#!/usr/bin/env bash
# Issue 17: our service side by side with the seed stack (Flask + python-alipay-sdk under gunicorn,
# ../shared/peers/seed-flask) in the same run: same machine, same Postgres, same kind of plan and
# pre-signed bodies, same load generator and closed loop, runs alternating seed, ours, seed, ours
# (the machine is shared and its speed drifts, so only figures from one round compare).
#
#   cargo build --release -p alipay-notify -p alipay-notify-bench
#   bash bench/seed-side-by-side.sh
#
# Prints one line per run (with the machine's 1-minute load average at its start and end) and,
# per round, ours/seed throughput and seed p99 / ours p99 (issue 17's targets: >= 15x and >= 10x).
# First, untimed, a smoke run of each: it builds the seed's venv if missing (pip, from PyPI) and
# proves both paths before any figure counts.
#
# ROUNDS (default 2), ORDERS (default 10000; SEED_ORDERS for the seed, default the same),
# DUPLICATES (0.2), CONCURRENCY (64), ADMIN_URL (the Postgres server), SEED_FLASK_DIR, SEED_VENV
# (serve.sh's venv, default /tmp/seed-flask-venv), BENCH (the load generator) and OUT (where each
# run's JSON report is kept, default a temp dir) adjust it.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ROUNDS="${ROUNDS:-2}"
ORDERS="${ORDERS:-10000}"
SEED_ORDERS="${SEED_ORDERS:-$ORDERS}"
DUPLICATES="${DUPLICATES:-0.2}"
CONCURRENCY="${CONCURRENCY:-64}"
SEED_FLASK_DIR="${SEED_FLASK_DIR:-../shared/peers/seed-flask}"
BENCH="${BENCH:-target/release/alipay-notify-bench}"
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
common=(--database "$ADMIN_URL" --duplicates "$DUPLICATES" --concurrency "$CONCURRENCY" --json)
seed=(--peer seed-flask --peer-dir "$SEED_FLASK_DIR")

load() { cut -d' ' -f1 /proc/loadavg; }

# One line from a report: label, figures, load at start (the report's) and at the end ($3).
summary='import json, sys
r = json.load(open(sys.argv[1])); l = r["latency_ms"]
fmt = lambda v, f: "-" if v is None else f % v
print("%-5s %6.0f/s  p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f ms  cpu %s us/req  rss %s MiB"
      "  %d+%d req  non-success %d  check %s  load %s -> %s"
      % (sys.argv[2], r["requests_per_second"], l["p50"], l["p90"], l["p99"], l["p99_9"], l["max"],
         fmt(r["service_cpu_us_per_request"], "%.0f"), fmt(r["service_peak_rss_mib"], "%.1f"),
         r["orders"], r["duplicates"], r["non_success"], "passed" if r["passed"] else "FAILED",
         fmt(r["load_average"], "%.2f"), sys.argv[3]))'

# ours/seed throughput, seed p99 / ours p99, and seed / ours CPU per request from two reports.
# The last holds best when other work shares the machine: a CPU-bound seed loses throughput to
# it in proportion, ours (not CPU-bound here) less.
ratios='import json, sys
s, o = (json.load(open(p)) for p in sys.argv[1:3])
t = o["requests_per_second"] / s["requests_per_second"]
p = s["latency_ms"]["p99"] / o["latency_ms"]["p99"]
c = s["service_cpu_us_per_request"] / o["service_cpu_us_per_request"]
print("%.2f %.2f %.1f" % (t, p, c))'

# Runs the bench with the arguments after $1 (the report's name); a failed run still prints its
# line (its report says FAILED), but a run without a report stops the script.
run() {
  local report="$OUT/$1.json"; shift
  "$BENCH" "$@" > "$report" 2> "${report%.json}.err" || true
  if ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$report" 2>/dev/null; then
    echo "no report from: $BENCH $*" >&2
    tail -n 20 "${report%.json}.err" >&2
    exit 1
  fi
}

echo "warm-up (not timed): smoke runs; the seed's venv is built now if missing"
run warmup-seed "${seed[@]}" "${common[@]}" --smoke
python3 -c "$summary" "$OUT/warmup-seed.json" seed "$(load)"
run warmup-ours "${common[@]}" --smoke
python3 -c "$summary" "$OUT/warmup-ours.json" ours "$(load)"

all=()
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round, $(date -u +%FT%TZ), load $(load), $CONCURRENCY connections, duplicates $DUPLICATES"
  run "round$round-seed" "${seed[@]}" "${common[@]}" --orders "$SEED_ORDERS"
  python3 -c "$summary" "$OUT/round$round-seed.json" seed "$(load)"
  run "round$round-ours" "${common[@]}" --orders "$ORDERS"
  python3 -c "$summary" "$OUT/round$round-ours.json" ours "$(load)"
  read -r t p c < <(python3 -c "$ratios" "$OUT/round$round-seed.json" "$OUT/round$round-ours.json")
  echo "round $round ratios: throughput ours/seed ${t}x (target >= 15), p99 seed/ours ${p}x" \
    "(target >= 10), CPU per request seed/ours ${c}x"
  all+=("$t $p $c")
done
printf '%s\n' "${all[@]}" | python3 -c 'import sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
t, p, c = ([r[i] for r in rows] for i in range(3))
print("all rounds: throughput ours/seed %.1f-%.1fx, p99 seed/ours %.1f-%.1fx, CPU per request seed/ours %.1f-%.1fx"
      % (min(t), max(t), min(p), max(p), min(c), max(c)))'
echo "reports in $OUT"
