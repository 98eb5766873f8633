#!/usr/bin/env bash
# Issue 13's benchmark: generate N orders (default 1,000,000) across five exports in the vendors'
# current formats, then run `handoff reconcile` (no columns file: only --timezone and
# --deadline) and DuckDB (reconcile.sql) on the same files, alternately, RUNS times each (default
# 3), and print each run's wall time, CPU time and peak memory (from /usr/bin/time -v), the
# medians, and handoff's wall time as a share of DuckDB's.
# Usage: bench/reconcile/run.sh [ORDERS] [DIR] [RUNS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
orders="${1:-1000000}"
dir="${2:-/tmp/handoff-recon-$orders}"
runs="${3:-3}"
bin="${HANDOFF_BIN:-$root/target/release/handoff}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -p handoff-cli)
if [ ! -f "$dir/manifest.json" ]; then
  "$bin" reconcile generate --orders "$orders" --seed 7 --out "$dir" > /dev/null
fi
manifest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$dir/manifest.json" "$1"; }
as_of="$(manifest as_of)"
zone="$(manifest timezone)"
deadline="$(manifest deadline)"
echo "== $orders orders in $dir ($(du -sh "$dir" | cut -f1)), as of $as_of, --timezone $zone --deadline $deadline"

# One line per run: LABEL WALL_S CPU_S RSS_KIB
figures() { # LABEL LOG
  python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[2]).read()
def field(name):
    return re.search(re.escape(name) + r".*: (.*)", text).group(1).strip()
wall = 0.0
for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
    wall = wall * 60 + float(part)
cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
print(sys.argv[1], wall, cpu, field("Maximum resident set size (kbytes)"))
PY
}

: > "$dir/figures"
for i in $(seq 1 "$runs"); do
  /usr/bin/time -v "$bin" reconcile \
    --storefront "$dir/shopify_orders.csv" --marketplace "$dir/amazon_orders.txt" \
    --payments "$dir/stripe_payments.csv" --erp "$dir/netsuite_orders.csv" \
    --erp-fulfillments "$dir/netsuite_fulfillments.csv" --as-of "$as_of" \
    --timezone "$zone" --deadline "$deadline" \
    --truth "$dir/ground_truth.jsonl" > "$dir/handoff.out" 2> "$dir/handoff.time"
  figures handoff "$dir/handoff.time" >> "$dir/figures"
  "$here/duckdb.sh" "$dir" "$as_of" "$zone" "${deadline%h}" > "$dir/duckdb.out" 2> "$dir/duckdb.time"
  figures duckdb "$dir/duckdb.time" >> "$dir/figures"
done
sed -n '/^read /,$p' "$dir/handoff.out"
cat "$dir/duckdb.out"
echo "== figures ($runs runs each, alternating)"
python3 - "$dir/figures" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, wall, cpu, rss = line.split()
    runs.setdefault(label, []).append((float(wall), float(cpu), int(rss)))
med = {}
for label, rows in runs.items():
    walls = ", ".join(f"{w:.2f}" for w, _, _ in rows)
    med[label] = [statistics.median(col) for col in zip(*rows)]
    w, c, r = med[label]
    print(f"{label:<8} median wall {w:.2f} s (runs {walls}), CPU {c:.2f} s, peak RSS {r / 1024:.0f} MiB")
if "handoff" in med and "duckdb" in med:
    print(f"handoff / duckdb: wall {med['handoff'][0] / med['duckdb'][0]:.2f}x, "
          f"CPU {med['handoff'][1] / med['duckdb'][1]:.2f}x, peak RSS {med['handoff'][2] / med['duckdb'][2]:.2f}x")
PY
