#!/usr/bin/env bash
# Issue 16's benchmark, in one run on one database: graphile-worker enqueuing and completing one
# job per order (each job in its own transaction, then 100 per transaction), then Handoff end to
# end (webhook -> durable -> planned -> delivered to the mock ERP -> acknowledged) with one hub
# and with two, then Handoff's durable webhook intake with one hub and with two. Every commit is
# durable (`synchronous_commit = on`, the server's default, which Handoff also sets).
# Usage: bench/postgres/run.sh [ORDERS] [DATABASE_URL]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
orders="${1:-50000}"
url="${2:-postgres://postgres@127.0.0.1:5432/test}"
bin="${HANDOFF_BIN:-$root/target/release/handoff}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -p handoff-cli)
# The exact versions of package-lock.json, installed once.
[ -d "$here/graphile/node_modules/graphile-worker" ] || (cd "$here/graphile" && npm ci --no-audit --no-fund --loglevel=error)

echo "== $orders orders on $url, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The same body size as Handoff's order webhooks (bench.rs `order_event`).
bytes=$("$bin" bench e2e --orders 1 2>/dev/null | sed -n 's/.*orders of \([0-9]*\) bytes.*/\1/p')
for mode in single batched; do
  (cd "$here/graphile" && node bench.mjs "$url" "$orders" "$mode" "${bytes:-300}" 2>&1 | grep '^graphile-worker')
done
cd "$(mktemp -d)"
for hubs in 1 2; do
  echo "-- handoff end to end, $hubs hub(s)"
  "$bin" bench e2e --store "$url" --hubs "$hubs" --orders "$orders" | grep -E 'orders/s|ERP records|intake while'
done
for hubs in 1 2; do
  echo "-- handoff durable intake, $hubs hub(s)"
  "$bin" bench intake --store "$url" --hubs "$hubs" --events "$((orders * 4))" --seconds 10 | grep -E 'events/s|time to 2xx'
done
