#!/usr/bin/env bash
# Issue 7's benchmark: generate N orders (default 1,000,000) across four exports, then run
# `handoff reconcile` and DuckDB (reconcile.sql) on the same files, one after the other, and
# print each one's wall time and peak memory (from /usr/bin/time -v).
# Usage: bench/reconcile/run.sh [ORDERS] [DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
orders="${1:-1000000}"
dir="${2:-/tmp/handoff-recon-$orders}"
bin="${HANDOFF_BIN:-$root/target/release/handoff}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -p handoff-cli)
if [ ! -f "$dir/manifest.json" ]; then
  "$bin" reconcile generate --orders "$orders" --seed 7 --out "$dir" > /dev/null
fi
as_of="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["as_of"])' "$dir/manifest.json")"
echo "== $orders orders in $dir ($(du -sh "$dir" | cut -f1)), as of $as_of"

figures() { # LABEL LOG
  local wall rss
  wall="$(grep 'Elapsed (wall clock)' "$2" | awk '{print $NF}')"
  rss="$(grep 'Maximum resident set size' "$2" | awk '{print $NF}')"
  printf '%-10s wall %s  peak RSS %d MiB\n' "$1" "$wall" "$((rss / 1024))"
}

/usr/bin/time -v "$bin" reconcile \
  --storefront "$dir/shopify_orders.csv" --marketplace "$dir/amazon_orders.txt" \
  --payments "$dir/stripe_payments.csv" --erp "$dir/netsuite_orders.csv" \
  --erp-fulfillments "$dir/netsuite_fulfillments.csv" --as-of "$as_of" \
  --truth "$dir/ground_truth.jsonl" > "$dir/handoff.out" 2> "$dir/handoff.time"
cat "$dir/handoff.out"
"$here/duckdb.sh" "$dir" "$as_of" > "$dir/duckdb.out" 2> "$dir/duckdb.time"
cat "$dir/duckdb.out"
echo "== figures"
figures handoff "$dir/handoff.time"
figures duckdb "$dir/duckdb.time"
