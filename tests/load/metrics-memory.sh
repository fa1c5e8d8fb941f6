#!/usr/bin/env bash
# Resident memory of `kontor serve` under steady load while nothing scrapes /metrics.
# Usage: tests/load/metrics-memory.sh [KONTOR_BINARY] [SECONDS] [RATE_PER_SECOND]
# Needs `hey` (Debian package). Serves on SQLite in a temporary folder, loads GET /healthz at a
# fixed rate (every request records a latency sample), and prints VmRSS every 15 seconds.
set -euo pipefail

kontor=${1:-target/release/kontor}
seconds=${2:-180}
rate=${3:-1000}
connections=10
dir=$(mktemp -d)
log="$dir/kontor.log"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

env -u RUST_LOG KONTOR_LOG__LEVEL=info KONTOR_DEVELOPMENT=true "$kontor" --data-dir "$dir/data" serve --listen 127.0.0.1:0 2>"$log" &
pid=$!
address=""
for _ in $(seq 1 300); do
    address=$(grep -o '"address":"[^"]*"' "$log" | head -n1 | cut -d'"' -f4 || true)
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "$address" ] || { echo "kontor did not start:"; cat "$log"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
echo "binary: $kontor ($("$kontor" --version)); load: $rate req/s for ${seconds}s on /healthz; no scraper"
echo "elapsed_s rss_kib"
hey -z "${seconds}s" -c "$connections" -q $((rate / connections)) "http://$address/healthz" >"$dir/hey.txt" &
load=$!
start=$(date +%s)
while kill -0 "$load" 2>/dev/null; do
    echo "$(( $(date +%s) - start )) $(rss)"
    sleep 15
done
wait "$load"
echo "$(( $(date +%s) - start )) $(rss)"
grep -E "Requests/sec|Total:" "$dir/hey.txt" | sed 's/^ */hey: /'
grep -E '^\s+\[200\]' "$dir/hey.txt" | sed 's/^ */hey: /'
