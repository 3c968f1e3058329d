#!/usr/bin/env bash
# The queue against NATS JetStream on the same disk, in one run (a benchmark, not a test; see README.md here).
#   bash Tests/Benchmarks/queue.sh            # after: swift build -c release --product queue-bench
#   SECONDS_PER=4 BIN=.build/release bash Tests/Benchmarks/queue.sh
set -euo pipefail

BIN=${BIN:-.build/release}
SECONDS_PER=${SECONDS_PER:-4}
SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
for package in nats-server libnats-dev gcc; do
    dpkg -s "$package" >/dev/null 2>&1 || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$package"; }
done
[ -x "$BIN/queue-bench" ] || { echo "queue.sh: $BIN/queue-bench is missing: swift build -c release --product queue-bench" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/yunzhen-queue-bench.XXXXXX")
nats_pid=""
cleanup() {
    [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

here=$(cd "$(dirname "$0")" && pwd)
gcc -O2 -o "$work/jetstream_bench" "$here/jetstream/jetstream_bench.c" -lnats -lpthread
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/ours" "$work/nats"
echo "queue.sh: yunzhen queue-bench (${SECONDS_PER}s per measurement)…" >&2
"$BIN/queue-bench" "$work/ours" "$SECONDS_PER" 2>/dev/null >"$work/ours.jsonl"
# JetStream with file storage on the same disk. Note: it acknowledges before fsync (sync_interval, 2 min default).
nats-server -js -sd "$work/nats" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "queue.sh: NATS JetStream $(nats-server --version | awk '{print $2}') with file storage…" >&2
"$work/jetstream_bench" "nats://127.0.0.1:$port" "$SECONDS_PER" >"$work/nats.jsonl"

python3 - "$work/ours.jsonl" "$work/nats.jsonl" <<'PY'
import json, sys
ours = [json.loads(line) for line in open(sys.argv[1])]
nats = [json.loads(line) for line in open(sys.argv[2])]
def find(rows, measure, **fields):
    for row in rows:
        if row["measure"] == measure and all(row.get(k) == v for k, v in fields.items()):
            return row
    return None
disk = find(ours, "disk append+fdatasync")
group = find(ours, "disk 64-event group+fdatasync, zero-filled file")
print(f"256-byte events. The disk: {disk['ops_per_s']:,.0f} appends+fdatasync/s (p50 {disk['p50_us']:.0f} µs); "
      f"a 64-event group ({group['bytes']:,} bytes) into zero-filled space: {group['ops_per_s']:,.0f} syncs/s "
      f"(p50 {group['p50_us']:.0f} µs),")
print(f"so 64 publishers with one event in flight each can reach at most {64 * group['ops_per_s']:,.0f} events/s here.")
print("yunzhen acknowledges after fdatasync; JetStream (default) acknowledges before its data is synced.\n")
print(f"{'measurement':<44} {'yunzhen/s':>12} {'JetStream/s':>12} {'ratio':>7}")
rows = [
    ("durable publish, 1 publisher", find(ours, "durable publish", publishers=1), find(nats, "jetstream sync publish", publishers=1)),
    ("durable publish, 8 publishers", find(ours, "durable publish", publishers=8), find(nats, "jetstream sync publish", publishers=8)),
    ("durable publish, 64 publishers", find(ours, "durable publish", publishers=64), find(nats, "jetstream sync publish", publishers=64)),
    ("async publish, 4,000 in flight", find(ours, "durable publish, async (4,000 in flight)"), find(nats, "jetstream async publish (4,000 in flight)")),
    ("consume", find(ours, "consume (read)"), find(nats, "jetstream consume (pull fetch)")),
]
for name, mine, theirs in rows:
    ratio = mine["events_per_s"] / theirs["events_per_s"] if mine and theirs else float("nan")
    print(f"{name:<44} {mine['events_per_s']:>12,.0f} {theirs['events_per_s']:>12,.0f} {ratio:>7.2f}")
sixty_four = find(ours, "durable publish", publishers=64)
print(f"64 publishers reach {sixty_four['events_per_s'] / (64 * group['ops_per_s']):.0%} of this disk's limit for them.")
print()
for row in ours:
    if row["measure"] == "publish→handler latency":
        ack = (f"; publisher acknowledged p50 {row['ack_p50_us']/1000:.2f} ms, p99 {row['ack_p99_us']/1000:.2f} ms"
               if "ack_p50_us" in row else "")
        print(f"publish→handler at {row['rate']}: p50 {row['p50_us']/1000:.2f} ms, p99 {row['p99_us']/1000:.2f} ms "
              f"({row['handled']}/{row['published']} handled){ack}")
for row in ours:
    if row["measure"] == "outbox end to end":
        print(f"outbox end to end (service transaction → relay → consumer process) at {row['rate']}: "
              f"{row['transactions_per_s']:,.0f} transactions/s, p50 {row['p50_us']/1000:.2f} ms, "
              f"p99 {row['p99_us']/1000:.2f} ms ({row['handled']}/{row['committed']} handled)")
PY
