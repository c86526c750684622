#!/usr/bin/env bash
# Instructions the agent executes per HTTP `tools/call get_gpu_health` (the request of
# side-by-side.sh, one keep-alive connection, one request at a time), counted by valgrind's
# callgrind: a count, not a time, so it repeats for the same binary whatever else the machine
# does. Each agent runs twice, serving FEW and then MANY requests after its start-up; the
# difference divided by MANY - FEW is the cost of one request without the start-up, and the
# same difference of the top functions says where it goes.
#
# Usage: testbed/wrk/instructions.sh [AGENT_BINARY ...]   (default: target/release/gpu-mcp-agent)
# Needs valgrind (callgrind_annotate) and python3; FEW (default 500), MANY (default 2500), TOP
# (functions listed per binary, default 12).
set -euo pipefail
few=${FEW:-500}
many=${MANY:-2500}
top=${TOP:-12}
agents=("$@")
[ ${#agents[@]} -gt 0 ] || agents=(target/release/gpu-mcp-agent)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cat >"$work/drive.py" <<'PY'
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_gpu_health","arguments":{}}}'
h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
for _ in range(600):  # the agent starts slowly under valgrind
    try:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("POST", "/mcp", body, h)
        c.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"nothing answers on port {port}")
for _ in range(n):
    c.request("POST", "/mcp", body, h)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"HTTP {r.status}")
PY

count() { # binary requests port -> callgrind output file
  local out="$work/cg.$3"
  GPU_MCP_AGENT_RATE_LIMIT_RPS=0 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$1" --transport http --listen "127.0.0.1:$3" --node-name bench-node >"$work/log.$3" 2>&1 &
  local pid=$!
  python3 "$work/drive.py" "$3" "$2"
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$out"
}

port=18290
for a in "${agents[@]}"; do
  f1=$(count "$a" "$few" "$port")
  f2=$(count "$a" "$many" "$((port + 1))")
  port=$((port + 2))
  echo "$a"
  python3 - "$f1" "$f2" "$((many - few))" "$top" <<'PY'
import collections, re, subprocess, sys
def load(f):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", f],
                         capture_output=True, text=True, check=True).stdout
    d = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in m.group(2):
            d[m.group(2).split(":", 1)[-1][:110]] += int(m.group(1).replace(",", ""))
    return d
a, b, n, top = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per = collections.Counter({k: (b[k] - a.get(k, 0)) / n for k in b})
total = sum(per.values())
print(f"  {total:,.0f} instructions per request")
for name, v in per.most_common(top):
    print(f"  {v:8,.0f} {100 * v / total:5.1f} %  {name}")
PY
done
