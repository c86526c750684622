#!/usr/bin/env bash
# Throughput of the agent's HTTP `get_gpu_health` side by side with nginx answering the very same
# bytes and with an official Go SDK MCP server (testbed/wrk/go-peer) answering the same result,
# under one wrk load (16 connections, 2 threads), one after the other on 127.0.0.1.
#
# Usage: testbed/wrk/side-by-side.sh [AGENT_BINARY ...]   (default: target/release/gpu-mcp-agent)
# Needs wrk, nginx, curl, python3 and Go; DURATION (seconds per target, default 10), ROUNDS
# (default 1: every target once). Every agent binary given is measured in turn (for example the
# one before a change, then after), and each round ends with each target's share of nginx's
# throughput in that round.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dur=${DURATION:-10}
agents=("$@")
[ ${#agents[@]} -gt 0 ] || agents=(target/release/gpu-mcp-agent)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
req='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_gpu_health","arguments":{}}}'
hdr=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')

wait_up() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "${hdr[@]}" -d "$req" "http://127.0.0.1:$1/mcp" && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2
  return 1
}
load() { # name port
  local out
  out=$(wrk -t2 -c16 -d"${dur}s" --latency -s "$here/post.lua" "http://127.0.0.1:$2/mcp")
  echo "$out" | awk -v n="$1" '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
    /non200=/ {split($0, a, "="); e=a[2]} END {printf "%-14s %10s req/s  p50 %-9s p99 %-9s non-200 %s\n", n, r, p50, p99, e}'
}

# The answer bytes, from the first agent.
GPU_MCP_AGENT_RATE_LIMIT_RPS=0 "${agents[0]}" --transport http --listen 127.0.0.1:18190 --node-name bench-node >"$work/a.log" 2>&1 &
pid=$!
wait_up 18190
curl -s "${hdr[@]}" -d "$req" http://127.0.0.1:18190/mcp >"$work/answer.json"
kill "$pid"; wait "$pid" 2>/dev/null || true
echo "answer: $(wc -c <"$work/answer.json") bytes"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
body = open(f"{w}/answer.json").read()
r = json.loads(body)["result"]
open(f"{w}/structured.json", "w").write(json.dumps(r["structuredContent"], separators=(",", ":")))
open(f"{w}/text.txt", "w").write(r["content"][0]["text"])
esc = body.replace("\\", "\\\\").replace("'", "\\'")
open(f"{w}/nginx.conf", "w").write(f"""worker_processes 2;
daemon off;
pid {w}/nginx.pid;
error_log {w}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:18191;
    location = /mcp {{ default_type application/json; return 200 '{esc}'; }}
  }}
}}
""")
PY

(cd "$here/go-peer" && go build -o "$work/go-peer" .)

# Each target answers in its turn, ROUNDS times over, so that a machine whose speed drifts
# (shared VMs do) weighs on every target alike; the ratios are taken within a round.
rounds=${ROUNDS:-1}
for round in $(seq "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "round $round of $rounds"
  nginx -c "$work/nginx.conf" &
  pid=$!
  wait_up 18191
  cmp -s <(curl -s "${hdr[@]}" -d "$req" http://127.0.0.1:18191/mcp) "$work/answer.json" ||
    { echo "nginx does not answer the same bytes" >&2; exit 1; }
  load nginx 18191 | tee -a "$work/results"
  kill "$pid"; wait "$pid" 2>/dev/null || true

  port=18192
  n=1
  for a in "${agents[@]}"; do
    # One load generator is one client: its per-client rate limit would answer most requests
    # 429, and nginx has none, so it is off here (through the environment, which older agents
    # ignore).
    GPU_MCP_AGENT_RATE_LIMIT_RPS=0 \
      "$a" --transport http --listen "127.0.0.1:$port" --node-name bench-node >"$work/a$port.log" 2>&1 &
    pid=$!
    wait_up "$port"
    load "agent $n" "$port" | tee -a "$work/results"
    echo "  ($a)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    port=$((port + 1))
    n=$((n + 1))
  done

  "$work/go-peer" 127.0.0.1:18199 "$work/structured.json" "$work/text.txt" >"$work/go.log" 2>&1 &
  pid=$!
  wait_up 18199
  load go-sdk-peer 18199 | tee -a "$work/results"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

# Each target's throughput as a share of nginx's in the same round, then the median.
python3 - "$work/results" <<'PY'
import statistics, sys
rounds, cur = [], {}
for line in open(sys.argv[1]):
    name, rps = line[:14].strip(), float(line[14:].split()[0])
    if name == "nginx" and cur:
        rounds.append(cur); cur = {}
    cur[name] = rps
rounds.append(cur)
print("share of nginx's req/s, per round, then the median (agent N: the Nth binary given):")
for name in [n for n in rounds[0] if n != "nginx"]:
    shares = [r[name] / r["nginx"] for r in rounds if name in r and r.get("nginx")]
    per = " ".join(f"{s:.2f}" for s in shares)
    print(f"  {name:<14} {per}  median {statistics.median(shares):.2f}")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
