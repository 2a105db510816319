#!/usr/bin/env bash
# Sizing figures for the stream Deployment (docs/deploy.md). It replays a
# generated workload at RATE messages/s into the in-process broker of
# `obolus dev --no-worker`, runs one `obolus stream` worker (rekey and join,
# the Deployment's stages) as a process of its own against it, and reads
# the worker's CPU time and memory from /proc until the worker has drained
# the replay (its consumer lag, read from /metrics, back at zero).
#
#   deploy/measure-stream.sh [RATE] [AGENT_REQUESTS]     defaults: 10000 60000
#   OBOLUS=path/to/obolus deploy/measure-stream.sh        default: bin/obolus (make build)
#
# 60000 agent requests make about 620,000 messages (a minute at 10,000/s).
# Prints the messages replayed, the wall time, the worker's CPU seconds and
# mean cores over it, and its peak resident memory (VmHWM). Other load on
# the machine shows up in the figures: run it on an otherwise idle one.
set -euo pipefail
rate=${1:-10000}
requests=${2:-60000}
bin=${OBOLUS:-bin/obolus}
work=$(mktemp -d)
dev=; worker=
cleanup() {
  for p in $worker $dev; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
http=127.0.0.1:$((40000 + RANDOM % 20000))

"$bin" gen --out "$work/wl" --agent-requests "$requests" --duration 24h --seed 11 >/dev/null

# Broker and replay: the replay starts as soon as the broker listens.
"$bin" dev --port "$port" --no-worker --workload "$work/wl" --rate "$rate" --log-level warn >"$work/dev.log" 2>&1 &
dev=$!
for _ in $(seq 100); do grep -q "kafka broker on" "$work/dev.log" && break; sleep 0.1; done

OBOLUS_STREAM_BROKERS=127.0.0.1:$port "$bin" stream --config "$work/wl/obolus.yaml" --http "$http" --log-level warn >"$work/worker.log" 2>&1 &
worker=$!
start=$(date +%s.%N)

lag() { curl -fs "http://$http/metrics" | awk '/^obolus_stream_consumer_lag[{ ]/ {s += $NF; n++} END {if (n) print s; else print -1}'; }
zero=0
while :; do
  sleep 1
  kill -0 "$worker" 2>/dev/null || { echo "worker exited:"; cat "$work/worker.log"; exit 1; }
  if grep -q "^replayed" "$work/dev.log" && [ "$(lag 2>/dev/null || echo -1)" = 0 ]; then
    zero=$((zero + 1)); [ $zero -ge 3 ] && break
  else
    zero=0
  fi
done
end=$(date +%s.%N)
ticks=$(awk '{print $14 + $15}' "/proc/$worker/stat")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$worker/status")
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$worker/status")
msgs=$(sed -n 's/^replayed \([0-9]*\) usage and \([0-9]*\) agent.*/\1 \2/p' "$work/dev.log" | awk '{print $1 + $2}')
awk -v m="$msgs" -v r="$rate" -v s="$start" -v e="$end" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v hwm="$hwm" -v rss="$rss" 'BEGIN {
  wall = e - s - 3; cpu = t / hz
  printf "replayed %d messages at %d/s; worker drained them in %.1f s\n", m, r, wall
  printf "worker CPU %.1f s: %.2f cores on average, %.2f CPU-seconds per 10,000 messages\n", cpu, cpu / wall, cpu / m * 10000
  printf "worker memory: peak RSS %.0f MiB, at the end %.0f MiB\n", hwm / 1024, rss / 1024
}'
