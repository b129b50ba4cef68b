#!/usr/bin/env bash
# HTTP load benchmark: athens (disk storage) against nginx serving the same
# files from the same directory, mapped to the same proxy URLs.
#
#   benches/load.sh                  # 10 s per run, 64 connections, 3 rounds
#   DURATION=5s CONNS=64 ROUNDS=5 benches/load.sh
#   LOG_LEVEL=error benches/load.sh  # athens without request lines
#   ATHENS_BIN=/path/to/athens benches/load.sh   # another build
#   PIN=1 benches/load.sh            # servers on CPU 0, wrk on CPU 1
#
# athens runs at LOG_LEVEL (default: unset, i.e. its default level, which
# writes a line per request) with stderr appended to a file; each run
# counts the request lines it added against wrk's request count, so lines
# the log writer dropped show up as "lost log lines". nginx runs with
# access_log off either way.
#
# Each round loads athens and then nginx on every target; the table gives
# each figure's median over the rounds (the machine's noise moves single
# runs by tens of percent).
#
# Needs wrk and nginx (apt-get install wrk nginx). Everything binds
# 127.0.0.1 and lives in a temporary directory removed at exit; both
# servers are stopped by their own pids. Figures are kept in
# benches/RESULTS.md.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
LOG_LEVEL=${LOG_LEVEL:-}
PIN=${PIN:-}
ATHENS_PORT=${ATHENS_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}

REPO=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk nginx; do
    command -v "$tool" >/dev/null || { echo "load.sh: $tool not found (apt-get install $tool)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/athens-load.XXXXXX)
ATHENS_PID=
NGINX_PID=
cleanup() {
    [ -n "$ATHENS_PID" ] && kill "$ATHENS_PID" 2>/dev/null && wait "$ATHENS_PID" 2>/dev/null
    [ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${ATHENS_BIN:-}" ]; then
    ATHENS=$ATHENS_BIN
else
    echo "== building athens (release)" >&2
    (cd "$REPO" && cargo build --release --bin athens 2>&1 | tail -1) >&2
    ATHENS="$REPO/target/release/athens"
fi
SERVER_CPU=()
CLIENT_CPU=()
if [ -n "$PIN" ]; then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
fi

# --- modules -----------------------------------------------------------------
STORE="$WORK/storage"
mkdir -p "$STORE" "$WORK/src/small" "$WORK/src/large/data"
printf 'module example.com/small\n\ngo 1.21\n' >"$WORK/src/small/go.mod"
for i in 1 2 3; do
    printf 'package small\n\n// F%d returns its argument doubled.\nfunc F%d(x int) int { return 2 * x }\n' "$i" "$i" \
        >"$WORK/src/small/f$i.go"
done
# An embedded random constant brings the small zip to ~2 KB.
printf 'package small\n\nconst Blob = "%s"\n' "$(head -c 1200 /dev/urandom | base64 -w0)" >"$WORK/src/small/blob.go"
printf 'module example.com/large\n\ngo 1.21\n' >"$WORK/src/large/go.mod"
printf 'package large\n' >"$WORK/src/large/large.go"
# Incompressible data, so the zip is ~20 MB whatever deflate does.
for i in $(seq -w 1 20); do
    head -c 1048576 /dev/urandom >"$WORK/src/large/data/blob$i.bin"
done
for m in small large; do
    "$ATHENS" pack "$WORK/src/$m" --module "example.com/$m" --version v1.0.0 \
        --out "$STORE" --layout athens --time 2024-01-01T00:00:00Z >/dev/null
done
chmod -R a+rX "$WORK"
size() { stat -c %s "$1"; }
echo "== small zip $(size "$STORE/example.com/small/v1.0.0/source.zip") bytes," \
    "large zip $(size "$STORE/example.com/large/v1.0.0/source.zip") bytes" >&2

# --- servers -----------------------------------------------------------------
# athens at LOG_LEVEL (its default when unset), nginx with access_log off.
ATHENS_LOG="$WORK/athens.log"
(
    [ -z "$LOG_LEVEL" ] || export ATHENS_LOG_LEVEL=$LOG_LEVEL
    ATHENS_STORAGE_TYPE=disk ATHENS_DISK_STORAGE_ROOT="$STORE" \
        ATHENS_PORT="127.0.0.1:$ATHENS_PORT" \
        exec "${SERVER_CPU[@]}" "$ATHENS" >>"$ATHENS_LOG" 2>&1
) &
ATHENS_PID=$!

mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx-tmp/body;
    proxy_temp_path $WORK/nginx-tmp/proxy;
    fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
    scgi_temp_path $WORK/nginx-tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $STORE;
        location ~ ^/(.+)/@v/(.+)\.info\$ { default_type application/json; rewrite ^/(.+)/@v/(.+)\.info\$ /\$1/\$2/\$2.info break; }
        location ~ ^/(.+)/@v/(.+)\.mod\$  { default_type text/plain; rewrite ^/(.+)/@v/(.+)\.mod\$ /\$1/\$2/go.mod break; }
        location ~ ^/(.+)/@v/(.+)\.zip\$  { default_type application/zip; rewrite ^/(.+)/@v/(.+)\.zip\$ /\$1/\$2/source.zip break; }
    }
}
EOF
"${SERVER_CPU[@]}" nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log" &
NGINX_PID=$!

wait_up() {
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "load.sh: $1 did not come up" >&2
    cat "$WORK/athens.log" "$WORK/nginx-error.log" >&2 2>/dev/null || true
    exit 1
}
wait_up "http://127.0.0.1:$ATHENS_PORT/example.com/small/@v/v1.0.0.info"
wait_up "http://127.0.0.1:$NGINX_PORT/example.com/small/@v/v1.0.0.info"

# Same bytes from both servers, or the comparison means nothing.
for path in small/@v/v1.0.0.info small/@v/v1.0.0.mod small/@v/v1.0.0.zip large/@v/v1.0.0.zip; do
    a=$(curl -fsS "http://127.0.0.1:$ATHENS_PORT/example.com/$path" | sha256sum)
    n=$(curl -fsS "http://127.0.0.1:$NGINX_PORT/example.com/$path" | sha256sum)
    [ "$a" = "$n" ] || { echo "load.sh: $path differs between athens and nginx" >&2; exit 1; }
done

# --- load ----------------------------------------------------------------------
# wrk prints "Requests/sec: N", "Transfer/sec: N{B,KB,MB,GB}" and, with
# --latency, a "99% T{us,ms,s}" line; normalise to req/s, MB/s and ms.
run_wrk() {
    local url=$1
    timeout 120 "${CLIENT_CPU[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 30s --latency "$url" | awk '
        / requests in / { total = $1 }
        /Requests\/sec:/ { rps = $2 }
        /Transfer\/sec:/ {
            v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
            f = (u == "GB") ? 1024 : (u == "MB") ? 1 : (u == "KB") ? 1/1024 : 1/1048576
            mbs = v * f
        }
        $1 == "99%" {
            v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
            f = (u == "s") ? 1000 : (u == "ms") ? 1 : (u == "us") ? 0.001 : 1
            p99 = v * f
        }
        /Non-2xx|Socket errors/ { errors = errors " " $0 }
        END { printf "%s %.2f %.3f %d%s\n", rps, mbs, p99, total, (errors == "" ? "" : " ERR:" errors) }'
}

# CPU time (user + system, clock ticks) the given processes have used so
# far, all their threads together: a measure of the work per request that the
# machine's other load moves far less than req/s.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$total"
}
nginx_pids() { echo "$NGINX_PID" $(pgrep -P "$NGINX_PID"); }

# Request lines athens has logged so far (plain or json format).
request_lines() { grep -c -e ': request method=' -e '"message":"request"' "$ATHENS_LOG" || true; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

TARGETS="small/@v/v1.0.0.info small/@v/v1.0.0.mod small/@v/v1.0.0.zip large/@v/v1.0.0.zip"
declare -A A_RPS A_MBS A_P99 N_RPS N_MBS N_P99 A_CPU N_CPU
TICK_US=$((1000000 / $(getconf CLK_TCK)))
for round in $(seq "$ROUNDS"); do
    echo "== round $round of $ROUNDS" >&2
    for target in $TARGETS; do
        : >"$ATHENS_LOG"
        before=$(cpu_ticks "$ATHENS_PID")
        read -r a_rps a_mbs a_p99 a_total a_err <<<"$(run_wrk "http://127.0.0.1:$ATHENS_PORT/example.com/$target")"
        a_cpu=$(( ($(cpu_ticks "$ATHENS_PID") - before) * TICK_US / (a_total > 0 ? a_total : 1) ))
        # Requests wrk cut off at the end may still be answered and logged
        # after it stops counting; lines missing beyond those were lost.
        sleep 0.5
        logged=$(request_lines)
        if [ -z "$LOG_LEVEL" ] || [ "$logged" -gt 0 ]; then
            lost=$((a_total - logged))
            [ "$lost" -le 0 ] || echo "  $target: $lost lost log lines ($logged logged, $a_total requests)" >&2
        fi
        # shellcheck disable=SC2046
        before=$(cpu_ticks $(nginx_pids))
        read -r n_rps n_mbs n_p99 n_total n_err <<<"$(run_wrk "http://127.0.0.1:$NGINX_PORT/example.com/$target")"
        # shellcheck disable=SC2046
        n_cpu=$(( ($(cpu_ticks $(nginx_pids)) - before) * TICK_US / (n_total > 0 ? n_total : 1) ))
        [ -z "${a_err:-}${n_err:-}" ] || echo "  $target errors: athens:${a_err:-} nginx:${n_err:-}" >&2
        A_RPS[$target]+=" $a_rps"; A_MBS[$target]+=" $a_mbs"; A_P99[$target]+=" $a_p99"
        N_RPS[$target]+=" $n_rps"; N_MBS[$target]+=" $n_mbs"; N_P99[$target]+=" $n_p99"
        A_CPU[$target]+=" $a_cpu"; N_CPU[$target]+=" $n_cpu"
    done
done

printf '%-10s %12s %12s %10s %10s %8s %8s %9s %9s %10s %10s\n' \
    target athens_rps nginx_rps athens_MBs nginx_MBs rps_pct MBs_pct a_p99_ms n_p99_ms a_cpu_us n_cpu_us
for target in $TARGETS; do
    name=${target#*/@v/v1.0.0}
    name=${target%%/*}$name
    awk -v t="$name" \
        -v ar="$(median <<<"${A_RPS[$target]}")" -v nr="$(median <<<"${N_RPS[$target]}")" \
        -v am="$(median <<<"${A_MBS[$target]}")" -v nm="$(median <<<"${N_MBS[$target]}")" \
        -v ap="$(median <<<"${A_P99[$target]}")" -v np="$(median <<<"${N_P99[$target]}")" \
        -v ac="$(median <<<"${A_CPU[$target]}")" -v nc="$(median <<<"${N_CPU[$target]}")" \
        'BEGIN { printf "%-10s %12.1f %12.1f %10.1f %10.1f %7.0f%% %7.0f%% %9.2f %9.2f %10d %10d\n", t, ar, nr, am, nm, 100*ar/nr, 100*am/nm, ap, np, ac, nc }'
    echo "  athens req/s:${A_RPS[$target]}  nginx req/s:${N_RPS[$target]}  athens cpu us/req:${A_CPU[$target]}  nginx cpu us/req:${N_CPU[$target]}"
done

echo "athens peak RSS (VmHWM): $(awk '/VmHWM/ { print $2, $3 }' "/proc/$ATHENS_PID/status")"
echo "nginx worker peak RSS (VmHWM): $(for p in $(pgrep -P "$NGINX_PID"); do awk '/VmHWM/ { printf "%s %s ", $2, $3 }' "/proc/$p/status"; done)"
echo "load: wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS rounds (medians), $(nproc) cores shared by client and servers${PIN:+ (servers pinned to CPU 0, wrk to CPU 1)}, athens LogLevel=${LOG_LEVEL:-default}"
