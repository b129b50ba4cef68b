#!/usr/bin/env bash
# Hits under a miss flood: latency of a stored .info (p50/p99) and athens'
# memory while other clients flood it with misses for versions whose
# upstream answers slowly.
#
#   benches/flood.sh                 # 10 s per phase
#   DURATION=5s SLOW=2 MISS_CONNS=256 HIT_CONNS=16 CANCELLED=20000 benches/flood.sh
#   ATHENS_BIN=path/to/athens benches/flood.sh   # that binary, no build
#
# Phases, each DURATION long, hits measured with wrk on one keep-alive
# connection pool:
#   quiet      hits only;
#   misses     plus MISS_CONNS connections asking for distinct missing
#              versions (each miss waits for the slow upstream, SLOW s);
#   cancelled  plus a client that sends CANCELLED miss requests for
#              distinct versions and hangs up right after each one.
# athens' RSS (VmRSS) is sampled every 0.5 s; its peak (VmHWM) is read at
# the end. The upstream is a small Python GOPROXY that sleeps SLOW s and
# answers 404; it counts the requests that reached it.
#
# Needs wrk (apt-get install wrk) and python3. Everything binds 127.0.0.1
# and lives in a temporary directory removed at exit; every process is
# stopped by its own pid; the run is bounded by DURATION (about 3 x
# DURATION + 30 s in all).
set -euo pipefail

DURATION=${DURATION:-10s}
SLOW=${SLOW:-2}
HIT_CONNS=${HIT_CONNS:-16}
MISS_CONNS=${MISS_CONNS:-256}
CANCELLED=${CANCELLED:-20000}
ATHENS_PORT=${ATHENS_PORT:-18090}
UPSTREAM_PORT=${UPSTREAM_PORT:-18091}

REPO=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk python3 curl; do
    command -v "$tool" >/dev/null || { echo "flood.sh: $tool not found" >&2; exit 1; }
done
secs=${DURATION%s}

WORK=$(mktemp -d /tmp/athens-flood.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${ATHENS_BIN:-}" ]; then
    # A binary built elsewhere (say, for an A/B of two builds).
    ATHENS=$ATHENS_BIN
else
    echo "== building athens (release)" >&2
    (cd "$REPO" && cargo build --release --bin athens 2>&1 | tail -1) >&2
    ATHENS="$REPO/target/release/athens"
fi

# --- a stored module ---------------------------------------------------------
STORE="$WORK/storage"
mkdir -p "$STORE" "$WORK/src"
printf 'module example.com/small\n\ngo 1.21\n' >"$WORK/src/go.mod"
printf 'package small\n\nfunc F(x int) int { return 2 * x }\n' >"$WORK/src/f.go"
"$ATHENS" pack "$WORK/src" --module example.com/small --version v1.0.0 \
    --out "$STORE" --layout athens --time 2024-01-01T00:00:00Z >/dev/null

# --- the slow upstream ---------------------------------------------------------
cat >"$WORK/upstream.py" <<EOF
import sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        sys.stdout.write("request\n"); sys.stdout.flush()
        time.sleep($SLOW)
        body = b"not found\n"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", $UPSTREAM_PORT), Slow).serve_forever()
EOF
python3 "$WORK/upstream.py" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)

# --- athens ----------------------------------------------------------------------
ATHENS_STORAGE_TYPE=disk ATHENS_DISK_STORAGE_ROOT="$STORE" \
    ATHENS_PORT="127.0.0.1:$ATHENS_PORT" ATHENS_LOG_LEVEL=error \
    ATHENS_GO_BINARY_ENV_VARS="GOPROXY=http://127.0.0.1:$UPSTREAM_PORT; GOSUMDB=off" \
    "$ATHENS" >"$WORK/athens.log" 2>&1 &
ATHENS_PID=$!
PIDS+=("$ATHENS_PID")

HIT="http://127.0.0.1:$ATHENS_PORT/example.com/small/@v/v1.0.0.info"
for _ in $(seq 100); do
    curl -fsS -o /dev/null "$HIT" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "$HIT" || { echo "flood.sh: athens did not come up" >&2; cat "$WORK/athens.log" >&2; exit 1; }

# Distinct missing versions from every wrk connection.
cat >"$WORK/miss.lua" <<'EOF'
local n = 0
function init(args)
    math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
end
function request()
    n = n + 1
    return wrk.format("GET", string.format("/example.com/miss%d/@v/v1.0.%d.info", math.random(1, 1000000000), n))
end
EOF

# Misses sent and abandoned: connect, send, hang up.
cat >"$WORK/cancel.py" <<EOF
import socket, random, time
deadline = time.time() + $secs
sent = 0
while sent < $CANCELLED and time.time() < deadline:
    s = socket.create_connection(("127.0.0.1", $ATHENS_PORT))
    s.sendall(b"GET /example.com/gone%d/@v/v1.0.0.info HTTP/1.1\r\nHost: x\r\n\r\n" % random.randrange(10**12))
    s.close()
    sent += 1
print(sent)
EOF

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$ATHENS_PID/status"; }
sample_rss() {
    local out=$1
    : >"$out"
    while kill -0 "$ATHENS_PID" 2>/dev/null; do rss_kb >>"$out"; sleep 0.5; done
}
max_of() { sort -n "$1" | tail -1; }

# wrk's --latency prints "50% X" and "99% X" with us/ms/s units.
hit_wrk() {
    timeout 120 wrk -t1 -c"$HIT_CONNS" -d"$DURATION" --timeout 10s --latency "$HIT" | awk '
        function ms(v,   u) { u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                             return v * ((u == "s") ? 1000 : (u == "ms") ? 1 : (u == "us") ? 0.001 : 1) }
        /Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx|Socket errors/ { errors = errors " " $0 }
        END { printf "%s %.3f %.3f%s\n", rps, p50, p99, (errors == "" ? "" : " ERR:" errors) }'
}

upstream_count() { grep -c request "$WORK/upstream.log" || true; }

run_phase() {
    local name=$1 rss_file="$WORK/rss-$1"
    sample_rss "$rss_file" &
    local sampler=$!
    read -r rps p50 p99 err <<<"$(hit_wrk)"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    printf '%-10s %10s %9s %9s %12s %10s %s\n' "$name" "$rps" "$p50" "$p99" \
        "$(( $(max_of "$rss_file") / 1024 ))" "$(upstream_count)" "${err:-}"
}

printf '%-10s %10s %9s %9s %12s %10s\n' phase hit_rps p50_ms p99_ms max_rss_MB upstream
run_phase quiet

timeout $((secs + 60)) wrk -t1 -c"$MISS_CONNS" -d"$((secs + 4))s" --timeout 60s -s "$WORK/miss.lua" \
    "http://127.0.0.1:$ATHENS_PORT" >"$WORK/miss-wrk.log" 2>&1 &
MISS_PID=$!
PIDS+=("$MISS_PID")
sleep 2
run_phase misses
wait "$MISS_PID" 2>/dev/null || true

timeout $((secs + 60)) python3 "$WORK/cancel.py" >"$WORK/cancel.log" 2>&1 &
CANCEL_PID=$!
PIDS+=("$CANCEL_PID")
sleep 1
run_phase cancelled
wait "$CANCEL_PID" 2>/dev/null || true

# Queued work of the hung-up clients is gone: a new miss reaches the
# upstream within a second.
before=$(upstream_count)
curl -s -o /dev/null --max-time $((SLOW + 5)) "http://127.0.0.1:$ATHENS_PORT/example.com/probe/@v/v1.0.0.info" &
PROBE_PID=$!
PIDS+=("$PROBE_PID")
sleep 1
after=$(upstream_count)
wait "$PROBE_PID" 2>/dev/null || true

echo "miss flood: $(awk '/requests in/ { print $1, "requests" } /Non-2xx/ { print "non-2xx:", $5 }' "$WORK/miss-wrk.log" | tr '\n' ' ')"
echo "cancelled flood: $(cat "$WORK/cancel.log") requests sent and abandoned"
echo "probe after the floods reached the upstream within 1 s: $([ "$after" -gt "$before" ] && echo yes || echo no)"
echo "athens peak RSS (VmHWM): $(awk '/VmHWM/ { print $2, $3 }' "/proc/$ATHENS_PID/status")"
echo "settings: GoGetWorkers=10 MaxPendingFetches=1000 (defaults), upstream $SLOW s per answer," \
    "hits on $HIT_CONNS connections, $MISS_CONNS miss connections, $DURATION per phase, $(nproc) cores shared by clients and server"
