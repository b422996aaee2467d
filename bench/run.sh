#!/usr/bin/env bash
# End-to-end benchmark of waguard on loopback; prints a Markdown table and writes it to
# bench/results.md. See bench/README.md for what each figure means.
#
#   bench/run.sh
#
# Knobs (environment):
#   BENCH_DURATION=15      seconds per saturated phase     BENCH_CONNS=64    BENCH_THREADS=2
#   BENCH_RATE=1000        req/s of the fixed-rate phases  BENCH_RATE_DURATION=15
#   BENCH_REST_SECONDS=10  seconds of the at-rest phase (no requests: CPU and wake-ups per second)
#   BENCH_WORKERS          the gateways' server.worker_threads (unset: the default, 2 here)
#   BENCH_IDLE_RATE=10     req/s of the idle phase (oha, one connection; lonely requests)
#   BENCH_IDLE_DURATION=10 seconds of the idle phase
#   BENCH_RATE_TOOL=auto   fixed-rate load generator: oha (open loop, latency corrected for
#                          coordinated omission; the default when installed) or wrk (each
#                          connection waits a fixed think time between requests)
#   BENCH_INSTALL_OHA=0    1: `cargo install oha --locked` when it is missing (takes minutes)
#   BENCH_RATE_CONNS       connections of the fixed-rate phases (oha: 32, wrk: 16)
#   BENCH_PY=0             1: also run the Python asyncio open-loop client as a cross-check
#   BENCH_IDLE_CONNS=1000  idle keep-alive connections for the RSS figure
#   BENCH_PERF=0           1: profile the gateway under saturated load with perf, top
#                          symbols to bench/perf.txt; rate: at BENCH_RATE req/s (oha) to
#                          bench/perf-rate.txt; idle: lonely requests (BENCH_IDLE_RATE on one
#                          connection, sampled 25x as often) to bench/perf-idle.txt
#   BENCH_NO_BUILD=0       1: use the existing release binary as is
#   BENCH_KEEP=0           1: keep the temp dir (configs, logs, audit file, wrk output)
#   BENCH_FLOOD=1          0: skip the anonymous-flood phase (needs oha and taskset)
#   BENCH_FLOOD_RATES="2000 5000 10000 20000 40000"  garbage req/s steps of the flood phase
#   BENCH_FLOOD_LEGIT_RATE=100  legitimate req/s during the flood  BENCH_FLOOD_DURATION=10
#   BENCH_FLOOR=0          1: also run examples/floor_proxy.rs (the gateway's parts, none of its
#                          work; plain, thread and inline modes) saturated, at BENCH_RATE and lonely
#
# Needs: wrk, nginx (Debian packages; installed with apt-get when missing and root),
# python3 with botocore (pip-installed when missing), cargo. Traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
DURATION=${BENCH_DURATION:-15}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
RATE=${BENCH_RATE:-1000}
RATE_DURATION=${BENCH_RATE_DURATION:-15}
IDLE_RATE=${BENCH_IDLE_RATE:-10}
# Unset: the gateway's default (and a config an older binary accepts, for before/after runs).
WORKERS_LINE=${BENCH_WORKERS:+worker_threads = $BENCH_WORKERS}
IDLE_DURATION=${BENCH_IDLE_DURATION:-10}
IDLE_CONNS=${BENCH_IDLE_CONNS:-1000}
RUN_PY=${BENCH_PY:-0}
RUN_PERF=${BENCH_PERF:-0}
WARMUP=3

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf '[bench] ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- tools
apt_install() { # returns non-zero when the package cannot be installed
    [ "$(id -u)" = 0 ] || die "missing $*; install it (apt-get install -y $*) or run as root"
    log "installing $* from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$@" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null; }
}
command -v wrk >/dev/null || apt_install wrk || die "apt-get install wrk failed"
command -v nginx >/dev/null || PATH="$PATH:/usr/sbin"
command -v nginx >/dev/null || apt_install nginx-light || apt_install nginx || die "apt-get install nginx failed"
command -v nginx >/dev/null || die "nginx not found after install"
command -v python3 >/dev/null || die "python3 is required"
python3 -c 'import botocore' 2>/dev/null || {
    log "installing botocore (pip)"
    python3 -m pip install -q botocore || die "pip install botocore failed"
}
command -v curl >/dev/null || apt_install curl || die "apt-get install curl failed"
OHA=$(command -v oha || { [ -x "$HOME/.cargo/bin/oha" ] && echo "$HOME/.cargo/bin/oha"; } || true)
if [ -z "$OHA" ] && [ "${BENCH_INSTALL_OHA:-0}" = 1 ]; then
    log "cargo install oha --locked (takes a few minutes)"
    cargo install oha --locked --quiet || die "cargo install oha failed"
    OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
fi
RATE_TOOL=${BENCH_RATE_TOOL:-auto}
if [ "$RATE_TOOL" = auto ]; then
    if [ -n "$OHA" ]; then RATE_TOOL=oha; else RATE_TOOL=wrk; fi
fi
case "$RATE_TOOL" in
oha) [ -n "$OHA" ] || die "BENCH_RATE_TOOL=oha but oha is not installed (BENCH_INSTALL_OHA=1 installs it)" ;;
wrk) ;;
*) die "BENCH_RATE_TOOL must be auto, oha or wrk" ;;
esac
if [ "$RATE_TOOL" = oha ]; then RATE_CONNS=${BENCH_RATE_CONNS:-32}; else RATE_CONNS=${BENCH_RATE_CONNS:-16}; fi
command -v ss >/dev/null || apt_install iproute2 || die "apt-get install iproute2 failed"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET_DIR/release/waguard"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release (no-op when fresh)"
    (cd "$ROOT" && cargo build --release --quiet --bin waguard) || die "cargo build --release failed"
fi
[ -x "$BIN" ] || die "$BIN not found (build it, or unset BENCH_NO_BUILD)"

# 1,000 idle connections need 1,000 descriptors in the client and in the gateway.
want_fds=$((IDLE_CONNS * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
fi
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_CONNS + 256)) ] ||
    die "open-file limit $(ulimit -n) too low for $IDLE_CONNS connections (hard limit $(ulimit -Hn))"

# ---------------------------------------------------------------- processes and cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/waguard-bench.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    set +e
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    [ -n "${SHM:-}" ] && rm -rf "$SHM"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fsync latency where the audit file lives: it is on every request's path (twice), and on a
# shared or busy disk it dominates the gateway's latency at low load.
fsync_probe() {
    python3 - "$TMP" <<'EOF'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
ts = []
for _ in range(200):
    os.write(fd, b"x" * 600 + b"\n")
    t = time.perf_counter()
    os.fsync(fd)
    ts.append(time.perf_counter() - t)
os.close(fd)
os.unlink(path)
ts.sort()
print(f"p50 {ts[100] * 1e3:.3f} ms, p99 {ts[198] * 1e3:.3f} ms")
EOF
}
FSYNC_START=$(fsync_probe)
log "fsync on $(df -T "$TMP" | awk 'NR == 2 {print $2}') (audit file's filesystem): $FSYNC_START"

read -r UP_PORT PROXY_PORT GW_PORT ADMIN_PORT GW2_PORT ADMIN2_PORT GW3_PORT ADMIN3_PORT < <(free_ports 8)

# ---------------------------------------------------------------- fast upstream + nginx proxy
mkdir -p "$TMP/nginx"
{
    nginx_fast_upstream "$TMP/nginx" "$UP_PORT"
    cat <<EOF

    # "A proxy that does nothing": plain reverse proxy to the fast upstream.
    upstream fast {
        server 127.0.0.1:$UP_PORT;
        keepalive 256;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT backlog=4096;
        location / {
            proxy_pass http://fast;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$TMP/nginx/nginx.conf"
nginx -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" 2>"$TMP/nginx/test.log" ||
    die "nginx config test failed: $(cat "$TMP/nginx/test.log")"
nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
    2>>"$TMP/nginx/error.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_port nginx "$UP_PORT" "$NGINX_PID" && wait_port nginx "$PROXY_PORT" "$NGINX_PID" ||
    die "nginx did not start: $(tail -5 "$TMP/nginx/error.log")"
log "nginx: fast upstream 127.0.0.1:$UP_PORT, plain proxy 127.0.0.1:$PROXY_PORT"

# ---------------------------------------------------------------- waguard
# Laid out as the Helm chart does: the callers file on its own (a Secret mount) and the audit
# log on its own volume.
mkdir -p "$TMP/etc" "$TMP/audit"
bench_callers >"$TMP/etc/callers.toml"
start_gateway() { # name port admin_port audit_file; sets LAST_PID
    local dir="$TMP/$1" pid
    mkdir -p "$dir"
    cat >"$dir/waguard.toml" <<EOF
[server]
listen = "127.0.0.1:$2"
admin_listen = "127.0.0.1:$3"
shutdown_grace = 2
$WORKERS_LINE

[upstream]
endpoint = "http://127.0.0.1:$UP_PORT"
allowed_regions = ["us-east-1"]

[policy]
dir = "$ROOT/policies"

[callers]
file = "$TMP/etc/callers.toml"

[audit]
file = "$4"
EOF
    env -u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_ROLE_ARN -u AWS_WEB_IDENTITY_TOKEN_FILE \
        -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
        AWS_ACCESS_KEY_ID=AKWGBENCHSERVICE001 AWS_SECRET_ACCESS_KEY=bench-service-secret-0001 \
        AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        ${GW_WRAP:-} "$BIN" serve --config "$dir/waguard.toml" 2>"$dir/waguard.log" &
    pid=$!
    PIDS+=("$pid")
    wait_port "$1" "$2" "$pid" || die "$1 did not start: $(tail -5 "$dir/waguard.log")"
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$3/readyz" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$3/readyz" >/dev/null ||
        die "$1 not ready: $(tail -5 "$dir/waguard.log")"
    log "$1 $("$BIN" --version | awk '{print $2}') (pid $pid) on 127.0.0.1:$2 -> http://127.0.0.1:$UP_PORT, audit $4"
    LAST_PID=$pid
}
AUDIT_FILE="$TMP/audit/audit.jsonl"
start_gateway waguard "$GW_PORT" "$ADMIN_PORT" "$AUDIT_FILE"
GW_PID=$LAST_PID

rss_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# CPU time (ns, from schedstat: clock ticks are too coarse for the idle phase), context
# switches (voluntary, involuntary) and time spent runnable but waiting for a CPU (ns, the run
# queue: schedstat's second field) of a process, summed over its threads: a thread that wakes
# another for each request shows here, and so does a thread the load generator and upstream
# keep off the CPU. (A thread that ends between two snapshots takes its share with it; the
# gateway keeps its threads.)
proc_counters() {
    local pid=$1 cpu_wait
    cpu_wait=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{t += $1; w += $2} END {printf "%.0f %.0f", t, w}')
    cat /proc/"$pid"/task/*/status 2>/dev/null |
        awk -v tw="$cpu_wait" '$1 == "voluntary_ctxt_switches:" {v += $2} $1 == "nonvoluntary_ctxt_switches:" {n += $2}
             END {split(tw, x, " "); printf "%s %d %d %s\n", x[1], v, n, x[2]}'
}
# Voluntary context switches of each thread (tid, name, count), to see which threads hand off.
thread_switches() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm" 2>/dev/null)" \
            "$(awk '$1 == "voluntary_ctxt_switches:" {print $2}' "$t/status" 2>/dev/null)"
    done
}
# Per thread name, voluntary switches per request between two thread_switches snapshots.
thread_breakdown() { # "before" "after" requests
    python3 - "$1" "$2" "$3" <<'EOF'
import collections, sys
def parse(text):
    return {t: (n, int(c or 0)) for t, n, c in (l.split() for l in text.splitlines() if len(l.split()) == 3)}
before, after, requests = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3])
by_name = collections.Counter()
for tid, (name, count) in after.items():
    by_name[name] += count - before.get(tid, (name, 0))[1]
print(", ".join(f"{name} {c / requests:.2f}" for name, c in by_name.most_common() if c))
EOF
}
# Per request between two proc_counters snapshots: sets R[name.cpu_us], R[name.vcsw],
# R[name.ivcsw], R[name.runq_us].
per_request() { # name "before" "after" requests
    local name=$1 t0 v0 n0 w0 t1 v1 n1 w1
    read -r t0 v0 n0 w0 <<<"$2"
    read -r t1 v1 n1 w1 <<<"$3"
    R[$name.runq_us]=$(awk -v w="$((w1 - w0))" -v r="$4" 'BEGIN {printf "%.0f", w / 1e3 / r}')
    R[$name.cpu_us]=$(awk -v t="$((t1 - t0))" -v r="$4" 'BEGIN {printf "%.0f", t / 1e3 / r}')
    R[$name.vcsw]=$(awk -v c="$((v1 - v0))" -v r="$4" 'BEGIN {printf "%.1f", c / r}')
    R[$name.ivcsw]=$(awk -v c="$((n1 - n0))" -v r="$4" 'BEGIN {printf "%.1f", c / r}')
    log "$name: per request ${R[$name.cpu_us]} us of gateway CPU, ${R[$name.vcsw]} voluntary + ${R[$name.ivcsw]} involuntary context switches, ${R[$name.runq_us]} us runnable but waiting for a CPU"
}
# Machine-wide CPU time from /proc/stat: total, idle (idle + iowait) and steal (taken by the
# hypervisor for other guests), in clock ticks.
machine_cpu() {
    awk '$1 == "cpu" {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $9}' /proc/stat
}
# What a saturated phase left of the machine: if the CPUs were not all busy, something other than
# CPU (the fsync, the number of connections) bounded the throughput.
machine_share() { # name "before" "after"
    local t0 i0 s0 t1 i1 s1
    read -r t0 i0 s0 <<<"$2"
    read -r t1 i1 s1 <<<"$3"
    R[$1.idle_pct]=$(awk -v i="$((i1 - i0))" -v t="$((t1 - t0))" 'BEGIN {printf "%.0f", 100 * i / t}')
    R[$1.steal_pct]=$(awk -v i="$((s1 - s0))" -v t="$((t1 - t0))" 'BEGIN {printf "%.0f", 100 * i / t}')
    log "$1: the machine's CPUs were ${R[$1.idle_pct]}% idle, ${R[$1.steal_pct]}% stolen by the hypervisor"
}
RSS_START=$(rss_kib "$GW_PID" VmRSS)

declare -A R # results: R[name.key]

# At rest: what the gateway costs with no requests at all (its usual state): CPU and wake-ups
# (voluntary context switches) per second over REST_SECONDS.
REST_SECONDS=${BENCH_REST_SECONDS:-10}
sleep 2 # let startup work (policy load, first checks) finish
read -r t0 v0 _ <<<"$(proc_counters "$GW_PID")"
sleep "$REST_SECONDS"
read -r t1 v1 _ <<<"$(proc_counters "$GW_PID")"
R[rest.cpu_us]=$(awk -v t="$((t1 - t0))" -v s="$REST_SECONDS" 'BEGIN {printf "%.0f", t / 1e3 / s}')
R[rest.wakeups]=$(awk -v c="$((v1 - v0))" -v s="$REST_SECONDS" 'BEGIN {printf "%.1f", c / s}')
log "at rest (${REST_SECONDS}s, no requests): ${R[rest.cpu_us]} us of CPU and ${R[rest.wakeups]} wake-ups per second"

# ---------------------------------------------------------------- the signed request
sign() { # [port]: fresh signature: SigV4 allows replay for 5 minutes, a phase takes ~15 s
    BENCH_ACCESS_KEY_ID=$CALLER_KEY BENCH_SECRET_ACCESS_KEY=$CALLER_SECRET \
        python3 "$BENCH/sign.py" "127.0.0.1:${1:-$GW_PORT}" "$TMP/req" || die "signing failed"
}
sign
check() { # name port: one request, must be 200 with a ShareId
    local out
    out=$(python3 "$BENCH/clients.py" once 127.0.0.1 "$2" "$TMP/req.http" 2>&1) ||
        die "$1: request failed: $out"
    [ "$(head -1 <<<"$out")" = 200 ] && grep -q "\"ShareId\"" <<<"$out" ||
        die "$1: expected 200 with a ShareId, got: $out$( [ -f "$TMP/$1/waguard.log" ] && printf '\n--- %s log:\n%s' "$1" "$(tail -3 "$TMP/$1/waguard.log")")"
    log "$1: sample answer ok: $(tail -1 <<<"$out")"
}
check direct "$UP_PORT"
check nginx "$PROXY_PORT"
check waguard "$GW_PORT"

# ---------------------------------------------------------------- load phases
FAILED=()
parse_wrk() { # name file
    local line
    line=$(grep '^BENCH ' "$2" || true)
    [ -n "$line" ] || die "$1: no result from wrk: $(cat "$2")"
    for kv in ${line#BENCH }; do R[$1.${kv%%=*}]=${kv#*=}; done
    R[$1.rps]=$(awk -v n="${R[$1.requests]}" -v d="${R[$1.duration_us]}" 'BEGIN {printf "%.0f", n / (d / 1e6)}')
    local errs=$((R[$1.connect] + R[$1.read] + R[$1.write] + R[$1.timeout]))
    R[$1.errors]=$errs
    if [ "${R[$1.status]}" != 0 ] || [ "$errs" != 0 ]; then
        FAILED+=("$1: ${R[$1.status]} non-2xx/3xx answers, errors connect ${R[$1.connect]} read ${R[$1.read]} write ${R[$1.write]} timeout ${R[$1.timeout]}")
    fi
}
run_wrk() { # name port threads conns seconds [delay_ms]
    local name=$1 port=$2 threads=$3 conns=$4 secs=$5 delay=${6:-0}
    WRK_DELAY_MS=$delay wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 5s --latency \
        -s "$TMP/req.lua" "http://127.0.0.1:$port" >"$TMP/wrk-$name.txt" 2>&1 ||
        die "$name: wrk failed: $(cat "$TMP/wrk-$name.txt")"
    parse_wrk "$name" "$TMP/wrk-$name.txt"
    log "$name: ${R[$name.rps]} req/s, p50 ${R[$name.p50_us]} us, p99 ${R[$name.p99_us]} us, p99.9 ${R[$name.p999_us]} us"
}

log "warm-up (${WARMUP}s each)"
for t in "direct $UP_PORT" "nginx $PROXY_PORT" "waguard $GW_PORT"; do
    set -- $t
    sign
    WRK_DELAY_MS=0 wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 5s -s "$TMP/req.lua" \
        "http://127.0.0.1:$2" >"$TMP/wrk-warmup-$1.txt" 2>&1 || die "warm-up $1 failed"
done

log "saturated: wrk -t$THREADS -c$CONNS -d${DURATION}s"
run_wrk sat_direct "$UP_PORT" "$THREADS" "$CONNS" "$DURATION"
run_wrk sat_nginx "$PROXY_PORT" "$THREADS" "$CONNS" "$DURATION"
sign
COUNTERS_BEFORE=$(proc_counters "$GW_PID")
MACHINE_BEFORE=$(machine_cpu)
run_wrk sat_waguard "$GW_PORT" "$THREADS" "$CONNS" "$DURATION"
machine_share sat_waguard "$MACHINE_BEFORE" "$(machine_cpu)"
per_request sat_waguard "$COUNTERS_BEFORE" "$(proc_counters "$GW_PID")" "${R[sat_waguard.requests]}"

run_oha() { # name port [rate seconds conns]: open loop, latency measured from when each was due
    local name=$1 args rate=${3:-$RATE} secs=${4:-$RATE_DURATION} conns=${5:-$RATE_CONNS}
    mapfile -t args <"$TMP/req.oha"
    ${OHA_WRAP:-} "$OHA" -q "$rate" -z "${secs}s" -w --latency-correction -c "$conns" -t 5s \
        --no-tui --output-format json "${args[@]}" "http://127.0.0.1:$2$(cat "$TMP/req.path")" \
        >"$TMP/oha-$name.json" 2>"$TMP/oha-$name.err" || die "$name: oha failed: $(cat "$TMP/oha-$name.err")"
    eval "$(python3 - "$TMP/oha-$name.json" "$name" <<'EOF'
import json, sys
d, n = json.load(open(sys.argv[1])), sys.argv[2]
codes = d.get("statusCodeDistribution") or {}
p = d["latencyPercentiles"]
print(f"R[{n}.requests]={sum(codes.values())}")
print(f"R[{n}.rps]={d['summary']['requestsPerSec']:.0f}")
for k, key in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
    print(f"R[{n}.{k}_us]={(p.get(key) or 0) * 1e6:.0f}")
print(f"R[{n}.status]={sum(v for c, v in codes.items() if not c.startswith('2'))}")
print(f"R[{n}.errors]={sum((d.get('errorDistribution') or {}).values())}")
EOF
)"
    if [ "${R[$name.status]}" != 0 ] || [ "${R[$name.errors]}" != 0 ]; then
        FAILED+=("$name: ${R[$name.status]} non-2xx answers, ${R[$name.errors]} errors: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("statusCodeDistribution"), d.get("errorDistribution"))' "$TMP/oha-$name.json")")
    fi
    log "$name: ${R[$name.rps]} req/s, p50 ${R[$name.p50_us]} us, p99 ${R[$name.p99_us]} us, p99.9 ${R[$name.p999_us]} us"
}

# The gateway's own histograms (sum, count over all label sets) around the waguard phase.
hist() { # metric admin_port
    curl -sf "http://127.0.0.1:$2/metrics" |
        awk -v m="$1" 'index($1, m "_sum") == 1 {s += $2} index($1, m "_count") == 1 {c += $2} END {printf "%.9f %d\n", s, c}'
}
HISTS="waguard_request_duration_seconds waguard_upstream_duration_seconds waguard_policy_evaluation_duration_seconds waguard_audit_wait_duration_seconds"
hist_snapshot() { for h in $HISTS; do echo "$h $(hist "$h" "${1:-$ADMIN_PORT}")"; done; }
hist_mean_us() { # metric before-file after-file
    awk -v m="$1" '$1 == m {if (NR == FNR) {s0 = $2; c0 = $3} else {s1 = $2; c1 = $3}}
        END {if (c1 > c0) printf "%.0f", (s1 - s0) / (c1 - c0) * 1e6; else print "n/a"}' "$2" "$3"
}

if [ "$RATE_TOOL" = oha ]; then
    RATE_NOTE="oha -q $RATE -c$RATE_CONNS --latency-correction (open loop)"
    log "fixed rate $RATE req/s: $RATE_NOTE, ${RATE_DURATION}s"
    run_oha rate_direct "$UP_PORT"
    run_oha rate_nginx "$PROXY_PORT"
    sign
    hist_snapshot >"$TMP/hist-before"
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" >"$TMP/metrics-rate-before" || true
    COUNTERS_BEFORE=$(proc_counters "$GW_PID")
    THREADS_BEFORE=$(thread_switches "$GW_PID")
    run_oha rate_waguard "$GW_PORT"
    per_request rate_waguard "$COUNTERS_BEFORE" "$(proc_counters "$GW_PID")" "${R[rate_waguard.requests]}"
    R[rate_waguard.threads]=$(thread_breakdown "$THREADS_BEFORE" "$(thread_switches "$GW_PID")" "${R[rate_waguard.requests]}")
    log "rate_waguard: voluntary switches per request by thread: ${R[rate_waguard.threads]}"
    hist_snapshot >"$TMP/hist-after"
    curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" >"$TMP/metrics-rate-after" || true
    # Where the slow requests are slow: the share of requests over 1 and 2.5 ms in the
    # gateway's own histograms (their buckets are too coarse for a percentile).
    R[rate_tail]=$(python3 "$BENCH/hist_tail.py" "$TMP/metrics-rate-before" "$TMP/metrics-rate-after" || echo n/a)
    log "rate_waguard: slow requests in the gateway's histograms: ${R[rate_tail]}"
    # Lonely requests: the gateway's real load is a few share operations a minute, so every
    # request finds the runtime, the audit writer and the disk asleep.
    log "idle: $IDLE_RATE req/s on one connection, ${IDLE_DURATION}s"
    run_oha idle_direct "$UP_PORT" "$IDLE_RATE" "$IDLE_DURATION" 1
    sign
    hist_snapshot >"$TMP/hist-idle-before"
    if [ "${BENCH_STRACE_IDLE:-0}" = 1 ]; then
        strace -f -tt -T -p "$GW_PID" -o "$TMP/strace-idle.txt" 2>/dev/null &
        STRACE_PID=$!
        PIDS+=("$STRACE_PID")
        sleep 1
    fi
    COUNTERS_BEFORE=$(proc_counters "$GW_PID")
    run_oha idle_waguard "$GW_PORT" "$IDLE_RATE" "$IDLE_DURATION" 1
    per_request idle_waguard "$COUNTERS_BEFORE" "$(proc_counters "$GW_PID")" "${R[idle_waguard.requests]}"
    hist_snapshot >"$TMP/hist-idle-after"
    if [ -n "${STRACE_PID:-}" ]; then
        kill -INT "$STRACE_PID" 2>/dev/null || true
        wait "$STRACE_PID" 2>/dev/null || true
        cp "$TMP/strace-idle.txt" "$BENCH/strace-idle.txt"
        log "idle: strace of the gateway written to bench/strace-idle.txt"
    fi
    for h in request upstream policy audit; do
        case $h in
        request) m=waguard_request_duration_seconds ;;
        upstream) m=waguard_upstream_duration_seconds ;;
        policy) m=waguard_policy_evaluation_duration_seconds ;;
        audit) m=waguard_audit_wait_duration_seconds ;;
        esac
        R[idle_hist.$h]=$(hist_mean_us "$m" "$TMP/hist-idle-before" "$TMP/hist-idle-after")
    done
    log "idle: gateway's histograms (means): request ${R[idle_hist.request]} us, audit fsync ${R[idle_hist.audit]} us, upstream ${R[idle_hist.upstream]} us, policy ${R[idle_hist.policy]} us"
else
    # Each of RATE_CONNS connections waits RATE_CONNS*1000/RATE ms before each request, so the
    # offered rate is ~RATE (less when latency is not small next to the think time).
    DELAY_MS=$((RATE_CONNS * 1000 / RATE))
    RATE_NOTE="wrk -t1 -c$RATE_CONNS, ${DELAY_MS} ms think time per connection (closed loop)"
    log "fixed rate ~$RATE req/s: $RATE_NOTE, ${RATE_DURATION}s"
    run_wrk rate_direct "$UP_PORT" 1 "$RATE_CONNS" "$RATE_DURATION" "$DELAY_MS"
    run_wrk rate_nginx "$PROXY_PORT" 1 "$RATE_CONNS" "$RATE_DURATION" "$DELAY_MS"
    sign
    hist_snapshot >"$TMP/hist-before"
    run_wrk rate_waguard "$GW_PORT" 1 "$RATE_CONNS" "$RATE_DURATION" "$DELAY_MS"
    hist_snapshot >"$TMP/hist-after"
fi

run_py() { # name port
    local out
    out=$(python3 "$BENCH/clients.py" rate 127.0.0.1 "$2" "$TMP/req.http" "$RATE" 10 32) ||
        die "$1: python fixed-rate client failed"
    echo "$out" >"$TMP/py-$1.json"
    eval "$(python3 - "$TMP/py-$1.json" "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("requests", "rate", "p50_us", "p99_us", "p999_us", "sent_p50_us", "sent_p99_us", "late_p99_us"):
    print(f"R[{sys.argv[2]}.{k}]={d[k]}")
print(f"R[{sys.argv[2]}.errors]={sum(d['errors'].values())}")
EOF
)"
    R[$1.rps]=$(printf '%.0f' "${R[$1.rate]}")
    [ "${R[$1.errors]}" = 0 ] || FAILED+=("$1: ${R[$1.errors]} failed requests: $out")
    log "$1: ${R[$1.rps]} req/s, p50 ${R[$1.p50_us]} us, p99 ${R[$1.p99_us]} us, p99.9 ${R[$1.p999_us]} us (client late p99 ${R[$1.late_p99_us]} us)"
}
if [ "$RUN_PY" = 1 ]; then
    log "fixed rate $RATE req/s, open loop (python asyncio, 32 connections, 10s)"
    run_py py_direct "$UP_PORT"
    sign
    run_py py_waguard "$GW_PORT"
fi

RSS_AFTER_LOAD=$(rss_kib "$GW_PID" VmRSS)
HWM_AFTER_LOAD=$(rss_kib "$GW_PID" VmHWM)

# ---------------------------------------------------------------- the same, without the disk
# A second gateway whose audit file is on tmpfs (fsync returns at once) separates what the
# disk costs from what the gateway itself adds. Not a deployment option: tmpfs is not durable.
SHM=
if [ "$(df -T /dev/shm 2>/dev/null | awk 'NR == 2 {print $2}')" = tmpfs ]; then
    SHM=$(mktemp -d /dev/shm/waguard-bench.XXXXXX)
fi
if [ -n "$SHM" ]; then
    start_gateway waguard-tmpfs "$GW2_PORT" "$ADMIN2_PORT" "$SHM/audit.jsonl"
    GW2_PID=$LAST_PID
    sign "$GW2_PORT"
    check waguard-tmpfs "$GW2_PORT"
    WRK_DELAY_MS=0 wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 5s -s "$TMP/req.lua" \
        "http://127.0.0.1:$GW2_PORT" >"$TMP/wrk-warmup-tmpfs.txt" 2>&1 || die "warm-up tmpfs failed"
    COUNTERS_BEFORE=$(proc_counters "$GW2_PID")
    MACHINE_BEFORE=$(machine_cpu)
    run_wrk sat_tmpfs "$GW2_PORT" "$THREADS" "$CONNS" "$DURATION"
    machine_share sat_tmpfs "$MACHINE_BEFORE" "$(machine_cpu)"
    per_request sat_tmpfs "$COUNTERS_BEFORE" "$(proc_counters "$GW2_PID")" "${R[sat_tmpfs.requests]}"
    sign "$GW2_PORT"
    hist_snapshot "$ADMIN2_PORT" >"$TMP/hist2-before"
    if [ "$RATE_TOOL" = oha ]; then
        COUNTERS_BEFORE=$(proc_counters "$GW2_PID")
        THREADS_BEFORE=$(thread_switches "$GW2_PID")
        run_oha rate_tmpfs "$GW2_PORT"
        per_request rate_tmpfs "$COUNTERS_BEFORE" "$(proc_counters "$GW2_PID")" "${R[rate_tmpfs.requests]}"
        R[rate_tmpfs.threads]=$(thread_breakdown "$THREADS_BEFORE" "$(thread_switches "$GW2_PID")" "${R[rate_tmpfs.requests]}")
        log "rate_tmpfs: voluntary switches per request by thread: ${R[rate_tmpfs.threads]}"
    else
        run_wrk rate_tmpfs "$GW2_PORT" 1 "$RATE_CONNS" "$RATE_DURATION" "$DELAY_MS"
    fi
    hist_snapshot "$ADMIN2_PORT" >"$TMP/hist2-after"
    kill -TERM "$GW2_PID" 2>/dev/null || true
    wait "$GW2_PID" 2>/dev/null || true
else
    log "no tmpfs at /dev/shm: skipping the audit-on-tmpfs phases"
fi

# ---------------------------------------------------------------- the floor (optional)
# The same parts as the gateway with none of its work (examples/floor_proxy.rs): tokio with two
# workers, hyper's auto server, hyper-util's pooled client, mimalloc; forward only (plain), or
# after a ~300-byte record is appended and fdatasynced on the gateway's audit disk, by a writer
# thread (thread: the audit writer's shape) or by the request itself on its runtime thread
# (inline: no hand-off at all). What these cost here, the gateway cannot undercut.
FLOOR_MODES=()
if [ "${BENCH_FLOOR:-0}" = 1 ]; then
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        (cd "$ROOT" && cargo build --release --quiet --example floor_proxy) || die "cargo build --example floor_proxy failed"
    fi
    FLOOR_BIN="$TARGET_DIR/release/examples/floor_proxy"
    [ -x "$FLOOR_BIN" ] || die "$FLOOR_BIN not found"
    for mode in plain thread inline; do
        rm -f "$TMP/audit/floor.jsonl"
        "$FLOOR_BIN" "127.0.0.1:$GW2_PORT" "http://127.0.0.1:$UP_PORT" "$mode" "$TMP/audit/floor.jsonl" \
            2>"$TMP/floor-$mode.log" &
        FLOOR_PID=$!
        PIDS+=("$FLOOR_PID")
        wait_port "floor-$mode" "$GW2_PORT" "$FLOOR_PID" || die "floor_proxy $mode did not start: $(cat "$TMP/floor-$mode.log")"
        check "floor-$mode" "$GW2_PORT"
        WRK_DELAY_MS=0 wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 5s -s "$TMP/req.lua" \
            "http://127.0.0.1:$GW2_PORT" >"$TMP/wrk-warmup-floor.txt" 2>&1 || die "warm-up floor $mode failed"
        COUNTERS_BEFORE=$(proc_counters "$FLOOR_PID")
        MACHINE_BEFORE=$(machine_cpu)
        run_wrk "sat_floor_$mode" "$GW2_PORT" "$THREADS" "$CONNS" "$DURATION"
        machine_share "sat_floor_$mode" "$MACHINE_BEFORE" "$(machine_cpu)"
        per_request "sat_floor_$mode" "$COUNTERS_BEFORE" "$(proc_counters "$FLOOR_PID")" "${R[sat_floor_$mode.requests]}"
        if [ "$RATE_TOOL" = oha ]; then
            COUNTERS_BEFORE=$(proc_counters "$FLOOR_PID")
            run_oha "rate_floor_$mode" "$GW2_PORT"
            per_request "rate_floor_$mode" "$COUNTERS_BEFORE" "$(proc_counters "$FLOOR_PID")" "${R[rate_floor_$mode.requests]}"
            COUNTERS_BEFORE=$(proc_counters "$FLOOR_PID")
            run_oha "idle_floor_$mode" "$GW2_PORT" "$IDLE_RATE" "$IDLE_DURATION" 1
            per_request "idle_floor_$mode" "$COUNTERS_BEFORE" "$(proc_counters "$FLOOR_PID")" "${R[idle_floor_$mode.requests]}"
        fi
        kill -TERM "$FLOOR_PID" 2>/dev/null || true
        wait "$FLOOR_PID" 2>/dev/null || true
        FLOOR_MODES+=("$mode")
    done
fi

# ---------------------------------------------------------------- idle connections
log "opening $IDLE_CONNS idle keep-alive connections (one signed request each)"
sign
python3 "$BENCH/clients.py" idle 127.0.0.1 "$GW_PORT" "$TMP/req.http" "$IDLE_CONNS" "$TMP/idle.ready" \
    2>"$TMP/idle.log" &
IDLE_PID=$!
PIDS+=("$IDLE_PID")
for _ in $(seq 600); do
    [ -f "$TMP/idle.ready" ] && break
    kill -0 "$IDLE_PID" 2>/dev/null || die "idle client died: $(tail -3 "$TMP/idle.log")"
    sleep 0.1
done
[ -f "$TMP/idle.ready" ] || die "idle connections not established in 60 s"
sleep 1
read -r IDLE_OK IDLE_FAILED IDLE_STATUSES <"$TMP/idle.ready"
IDLE_OPEN=$(ss -Htn state established "( sport = :$GW_PORT )" | wc -l)
RSS_IDLE=$(rss_kib "$GW_PID" VmRSS)
HWM_IDLE=$(rss_kib "$GW_PID" VmHWM)
log "idle: $IDLE_OK answered 200 ($IDLE_FAILED failed, statuses $IDLE_STATUSES), $IDLE_OPEN open at the gateway; RSS $((RSS_IDLE / 1024)) MiB"
[ "$IDLE_OK" = "$IDLE_CONNS" ] || FAILED+=("idle: only $IDLE_OK of $IDLE_CONNS connections answered 200 ($IDLE_STATUSES)")
kill -TERM "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" 2>/dev/null || true

# ---------------------------------------------------------------- optional profile
# Profiles process $1 for 10 s while "$3..." drives it; writes the report to $2.
perf_profile() {
    local pid=$1 out=$2 title=$3
    shift 3
    perf record -q -F "${PERF_FREQ:-199}" --call-graph dwarf,16384 -p "$pid" -o "$TMP/perf.data" -- sleep 10 2>"$TMP/perf.log" &
    PERF_PID=$!
    PIDS+=("$PERF_PID")
    "$@" >"$TMP/perf-load.txt" 2>&1 || true
    wait "$PERF_PID" || true
    perf report -i "$TMP/perf.data" --no-children --no-inline --sort dso --stdio -g none >"$TMP/perf-dso.txt" 2>/dev/null || true
    perf report -i "$TMP/perf.data" --no-children --no-inline --sort dso,symbol --stdio -g none >"$TMP/perf-sym.txt" 2>/dev/null || true
    perf report -i "$TMP/perf.data" --no-children --no-inline --sort comm --stdio -g none >"$TMP/perf-comm.txt" 2>/dev/null || true
    perf script -i "$TMP/perf.data" --no-inline 2>/dev/null | python3 "$BENCH/perf_categories.py" >"$TMP/perf-cat.txt" || true
    {
        echo "# perf profile of waguard $title ($(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null))"
        echo "# load: $*"
        echo
        echo "## where the time goes (by call stack, bench/perf_categories.py)"
        cat "$TMP/perf-cat.txt"
        echo
        echo "## by thread"
        grep -v '^#' "$TMP/perf-comm.txt" | grep -v '^$' | sed -n 1,10p
        echo
        echo "## by shared object"
        grep -v '^#' "$TMP/perf-dso.txt" | grep -v '^$' | sed -n 1,15p
        echo
        echo "## top symbols (self time)"
        grep -v '^#' "$TMP/perf-sym.txt" | grep -v '^$' | sed 's/ *$//' | sed -n 1,60p
    } >"$out" || true
    sed -i 's/ *$//; s/^\(.\{200\}\).*/\1/' "$out"
    log "perf: profile written to ${out#"$ROOT"/}"
}

if [ "$RUN_PERF" != 0 ]; then
    if command -v perf >/dev/null && perf record -q -o /dev/null -- true 2>/dev/null; then
        sign
        if [ "$RUN_PERF" = idle ] && [ "$RATE_TOOL" = oha ]; then
            log "perf: profiling the gateway at $IDLE_RATE req/s on one connection (10 s)"
            PERF_FREQ=4999 perf_profile "$GW_PID" "$BENCH/perf-idle.txt" \
                "serving lonely requests ($IDLE_RATE req/s, one connection)" \
                run_oha perf_idle "$GW_PORT" "$IDLE_RATE" 10 1
        elif [ "$RUN_PERF" = rate ] && [ "$RATE_TOOL" = oha ]; then
            log "perf: profiling the gateway at $RATE req/s (10 s)"
            perf_profile "$GW_PID" "$BENCH/perf-rate.txt" "at $RATE req/s (audit on the disk)" \
                run_oha perf_rate "$GW_PORT" "$RATE" 10
        else
            log "perf: profiling the gateway under saturated load (10 s)"
            perf_profile "$GW_PID" "$BENCH/perf.txt" "under saturated load" \
                env WRK_DELAY_MS=0 wrk -t"$THREADS" -c"$CONNS" -d10s --timeout 5s -s "$TMP/req.lua" \
                "http://127.0.0.1:$GW_PORT"
        fi
    else
        log "perf: not usable here (perf record failed); skipped"
    fi
fi

# ---------------------------------------------------------------- anonymous flood
# How much unauthenticated garbage one core sheds while legitimate requests keep their latency:
# a third gateway pinned to CPU 0 (so tokio runs one worker), load generators pinned to the other
# CPUs. First the legitimate load alone (quiet p99), then the same load while oha sends garbage
# (a malformed-signature GET with a claimed key: parsed, refused 403, counted, never recorded one
# by one) at rising fixed rates. Reported: the highest garbage rate at which the legitimate p99
# stays within 2x of the quiet figure.
FLOOD_RATES=${BENCH_FLOOD_RATES:-"2000 5000 10000 20000 40000"}
FLOOD_LEGIT=${BENCH_FLOOD_LEGIT_RATE:-100}
FLOOD_SECS=${BENCH_FLOOD_DURATION:-10}
FLOOD_STEPS=()
FLOOD_BEST=
NCPU_ALL=$(nproc)
if [ "${BENCH_FLOOD:-1}" = 1 ] && [ "$RATE_TOOL" = oha ] && command -v taskset >/dev/null && [ "$NCPU_ALL" -ge 2 ]; then
    mkdir -p "$TMP/audit-flood"
    GW_WRAP="taskset -c 0" start_gateway waguard-flood "$GW3_PORT" "$ADMIN3_PORT" "$TMP/audit-flood/audit.jsonl"
    GW3_PID=$LAST_PID
    sign "$GW3_PORT"
    check waguard-flood "$GW3_PORT"
    OHA_WRAP="taskset -c 1-$((NCPU_ALL - 1))"
    GARBAGE_AUTH="AWS4-HMAC-SHA256 Credential=AKGARBAGEGARBAGE01/20200101/us-east-1/wellarchitected/aws4_request, SignedHeaders=host;x-amz-date, Signature=$(printf '0%.0s' $(seq 64))"
    run_oha flood_quiet "$GW3_PORT" "$FLOOD_LEGIT" "$FLOOD_SECS" 8
    QUIET_P99=${R[flood_quiet.p99_us]}
    for rate in $FLOOD_RATES; do
        sign "$GW3_PORT"
        $OHA_WRAP "$OHA" -q "$rate" -z "${FLOOD_SECS}s" -c 64 -t 5s --no-tui --output-format json \
            -H "authorization: $GARBAGE_AUTH" -H "x-amz-date: 20200101T000000Z" \
            "http://127.0.0.1:$GW3_PORT/templates/shares/garbage" >"$TMP/oha-garbage-$rate.json" 2>"$TMP/oha-garbage-$rate.err" &
        GARBAGE_PID=$!
        run_oha "flood_$rate" "$GW3_PORT" "$FLOOD_LEGIT" "$FLOOD_SECS" 8
        wait "$GARBAGE_PID" || die "garbage oha failed: $(cat "$TMP/oha-garbage-$rate.err")"
        read -r G_RPS G_403 G_OTHER < <(python3 - "$TMP/oha-garbage-$rate.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution") or {}
# Requests still in flight when oha's duration ends are "aborted due to deadline": not answers.
errors = sum(v for k, v in (d.get("errorDistribution") or {}).items() if k != "aborted due to deadline")
print(f"{d['summary']['requestsPerSec']:.0f}", codes.get("403", 0), sum(v for c, v in codes.items() if c != "403") + errors)
EOF
)
        P99=${R[flood_$rate.p99_us]}
        WITHIN=$(awk -v p="$P99" -v q="$QUIET_P99" 'BEGIN {print (p <= 2 * q) ? "yes" : "no"}')
        KEPT_UP=$(awk -v g="$G_RPS" -v r="$rate" 'BEGIN {print (g >= 0.9 * r) ? "yes" : "no"}')
        FLOOD_STEPS+=("| $rate | $G_RPS | $G_403 | $G_OTHER | $(awk -v u="$P99" 'BEGIN {printf "%.3f ms", u / 1000}') | $WITHIN |")
        log "flood $rate req/s offered: $G_RPS shed (403: $G_403, other/errors: $G_OTHER); legit p99 $P99 us (quiet $QUIET_P99 us)"
        [ "$G_OTHER" = 0 ] || FAILED+=("flood $rate: $G_OTHER garbage requests not answered 403")
        if [ "$WITHIN" = yes ] && [ "$KEPT_UP" = yes ]; then FLOOD_BEST=$G_RPS; else break; fi
    done
    FLOOD_AUDIT_BYTES=$(stat -c %s "$TMP/audit-flood/audit.jsonl")
    FLOOD_DECISIONS=$(grep -c '"type":"decision"' "$TMP/audit-flood/audit.jsonl" || true)
    FLOOD_AUTH_TOTAL=$(curl -sf "http://127.0.0.1:$ADMIN3_PORT/metrics" | awk '/^waguard_auth_failures_total/ {s += $2} END {printf "%d", s}')
    kill -TERM "$GW3_PID" 2>/dev/null || true
    wait "$GW3_PID" 2>/dev/null || true
    FLOOD_SUMMARIES=$(grep -c '"type":"auth_failures"' "$TMP/audit-flood/audit.jsonl" || true)
    FLOOD_SUMMARY_BYTES=$(grep '"type":"auth_failures"' "$TMP/audit-flood/audit.jsonl" | wc -c)
    OHA_WRAP=
else
    log "anonymous flood phase skipped (needs BENCH_FLOOD=1, oha, taskset and 2 CPUs)"
fi

# ---------------------------------------------------------------- gateway's own view
FSYNC_END=$(fsync_probe)
METRICS=$(curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^waguard_(requests_total|upstream_requests_total|audit_write_failures_total)' || true)
AUDIT_RECORDS=$(wc -l <"$AUDIT_FILE")
AUDIT_DECISIONS=$(grep -c '"type":"decision"' "$AUDIT_FILE" || true)
AUDIT_OUTCOMES=$(grep -c '"type":"outcome"' "$AUDIT_FILE" || true)
GW_REQ_MEAN=$(hist_mean_us waguard_request_duration_seconds "$TMP/hist-before" "$TMP/hist-after")
GW_UP_MEAN=$(hist_mean_us waguard_upstream_duration_seconds "$TMP/hist-before" "$TMP/hist-after")
GW_POLICY_MEAN=$(hist_mean_us waguard_policy_evaluation_duration_seconds "$TMP/hist-before" "$TMP/hist-after")
GW_AUDIT_MEAN=$(hist_mean_us waguard_audit_wait_duration_seconds "$TMP/hist-before" "$TMP/hist-after")
if [ -n "$SHM" ]; then
    GW2_REQ_MEAN=$(hist_mean_us waguard_request_duration_seconds "$TMP/hist2-before" "$TMP/hist2-after")
    GW2_UP_MEAN=$(hist_mean_us waguard_upstream_duration_seconds "$TMP/hist2-before" "$TMP/hist2-after")
    GW2_POLICY_MEAN=$(hist_mean_us waguard_policy_evaluation_duration_seconds "$TMP/hist2-before" "$TMP/hist2-after")
    GW2_AUDIT_MEAN=$(hist_mean_us waguard_audit_wait_duration_seconds "$TMP/hist2-before" "$TMP/hist2-after")
fi
if AUDIT_VERIFY=$(timeout 60 "$BIN" audit verify "$AUDIT_FILE" 2>&1); then :; else
    FAILED+=("audit verify: $AUDIT_VERIFY")
fi
AUDIT_VERIFY=${AUDIT_VERIFY//$TMP\//}
grep -q '^waguard_requests_total{.*decision="allow"' <<<"$METRICS" ||
    FAILED+=("gateway metrics show no allowed requests")
if grep -E '^waguard_requests_total' <<<"$METRICS" | grep -v 'decision="allow"' | grep -q .; then
    FAILED+=("gateway counted requests that were not allowed: $(grep -v 'decision="allow"' <<<"$METRICS" | grep requests_total | tr '\n' ' ')")
fi

# ---------------------------------------------------------------- report
ms() { awk -v u="$1" 'BEGIN {printf "%.3f ms", u / 1000}'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.3f ms", (a - b) / 1000}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
row() { # name scenario notes
    printf '| %s | %s | %s | %s | %s | %s |\n' "$2" "${R[$1.rps]}" "$(ms "${R[$1.p50_us]}")" \
        "$(ms "${R[$1.p99_us]}")" "$(ms "${R[$1.p999_us]}")" "$3"
}
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (+ uncommitted changes)" || true)
CPU=$(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
NCPU=$(nproc)
RATIO=$(awk -v a="${R[sat_waguard.rps]}" -v b="${R[sat_nginx.rps]}" 'BEGIN {printf "%.0f%%", 100 * a / b}')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

REPORT=$(
    cat <<EOF
# waguard end-to-end benchmark

- date: $(date -u +%FT%TZ)
- commit: $COMMIT$DIRTY
- CPU: $CPU, $NCPU CPUs ($(uname -r)); load average at the end: $LOADAVG
- tools: $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'),$([ -n "$OHA" ] && "$OHA" --version | head -1 | sed 's/^/ /;s/$/,/') nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), python $(python3 -c 'import platform, botocore; print(platform.python_version(), "botocore", botocore.__version__)')
- request: SigV4-signed CreateTemplateShare (team payments, SharedWith an approved OU), allowed by
  the repo's policies/, audit record fsynced (group commit) before forwarding, outcome audited,
  forwarded re-signed to a fast upstream (nginx \`return 200\` with a canned JSON answer);
  audit file on $(df -T "$TMP" | awk 'NR == 2 {print $2}'); fsync of a small append there: $FSYNC_START
  at the start, $FSYNC_END at the end
- everything on 127.0.0.1; load generator, gateway and upstream share the same $NCPU CPUs
- gateway runtime threads (server.worker_threads): ${BENCH_WORKERS:-default}

| scenario | req/s | p50 | p99 | p99.9 | notes |
|---|---:|---:|---:|---:|---|
$(row sat_direct "direct to upstream, saturated" "wrk -t$THREADS -c$CONNS -d${DURATION}s")
$(row sat_nginx "nginx plain proxy, saturated" "proxy_pass, keepalive upstream")
$(row sat_waguard "waguard, saturated" "verify + policy + audit fsync + re-sign + forward")
$(row rate_direct "direct to upstream, $RATE req/s" "$RATE_NOTE")
$(row rate_nginx "nginx plain proxy, $RATE req/s" "same")
$(row rate_waguard "waguard, $RATE req/s" "same")
EOF
    if [ -n "$SHM" ]; then
        row sat_tmpfs "waguard, audit on tmpfs, saturated" "as waguard, saturated; audit file in /dev/shm (fsync costs nothing)"
        row rate_tmpfs "waguard, audit on tmpfs, $RATE req/s" "same, at $RATE req/s"
    fi
    if [ "$RUN_PY" = 1 ]; then
        row py_direct "direct to upstream, $RATE req/s (python)" "python asyncio open loop, 32 conns, 10 s, latency from due time"
        row py_waguard "waguard, $RATE req/s (python)" "same"
    fi
    cat <<EOF

- **added latency at $RATE req/s** (waguard − direct, $RATE_TOOL): p50 $(diff_ms "${R[rate_waguard.p50_us]}" "${R[rate_direct.p50_us]}"), p99 $(diff_ms "${R[rate_waguard.p99_us]}" "${R[rate_direct.p99_us]}"), p99.9 $(diff_ms "${R[rate_waguard.p999_us]}" "${R[rate_direct.p999_us]}") (nginx proxy adds p50 $(diff_ms "${R[rate_nginx.p50_us]}" "${R[rate_direct.p50_us]}"), p99 $(diff_ms "${R[rate_nginx.p99_us]}" "${R[rate_direct.p99_us]}"))
- **at rest** (no requests, ${REST_SECONDS} s): ${R[rest.cpu_us]} µs of gateway CPU and ${R[rest.wakeups]} wake-ups (voluntary context switches) per second
- **lonely requests** ($IDLE_RATE req/s on one connection, oha): waguard p50 ${R[idle_waguard.p50_us]-n/a} µs, p99 ${R[idle_waguard.p99_us]-n/a} µs vs direct p50 ${R[idle_direct.p50_us]-n/a} µs, p99 ${R[idle_direct.p99_us]-n/a} µs: added p50 $(diff_ms "${R[idle_waguard.p50_us]-0}" "${R[idle_direct.p50_us]-0}"), p99 $(diff_ms "${R[idle_waguard.p99_us]-0}" "${R[idle_direct.p99_us]-0}"); gateway CPU ${R[idle_waguard.cpu_us]-n/a} µs per request; gateway's histograms: request ${R[idle_hist.request]-n/a} µs, audit fsync ${R[idle_hist.audit]-n/a} µs, upstream ${R[idle_hist.upstream]-n/a} µs, policy ${R[idle_hist.policy]-n/a} µs
- **gateway CPU per request at $RATE req/s** (/proc, all threads): ${R[rate_waguard.cpu_us]-n/a} µs, ${R[rate_waguard.vcsw]-n/a} voluntary + ${R[rate_waguard.ivcsw]-n/a} involuntary context switches; audit on tmpfs: ${R[rate_tmpfs.cpu_us]-n/a} µs, ${R[rate_tmpfs.vcsw]-n/a} + ${R[rate_tmpfs.ivcsw]-n/a}; voluntary switches by thread: ${R[rate_waguard.threads]-n/a} (tmpfs: ${R[rate_tmpfs.threads]-n/a})
EOF
    if [ "$RUN_PY" = 1 ]; then
        echo "- added latency, open-loop cross-check (python): p50 $(diff_ms "${R[py_waguard.p50_us]}" "${R[py_direct.p50_us]}"), p99 $(diff_ms "${R[py_waguard.p99_us]}" "${R[py_direct.p99_us]}"), p99.9 $(diff_ms "${R[py_waguard.p999_us]}" "${R[py_direct.p999_us]}") (client's own send lateness p99: ${R[py_waguard.late_p99_us]} us)"
    fi
    cat <<EOF
- gateway's own histograms during the waguard $RATE req/s phase (means): request received → response head ${GW_REQ_MEAN} µs, of which waiting for the audit fsync ${GW_AUDIT_MEAN} µs, upstream ${GW_UP_MEAN} µs, policy evaluation ${GW_POLICY_MEAN} µs; slow requests: ${R[rate_tail]-n/a}
EOF
    if [ -n "$SHM" ]; then
        cat <<EOF
- **without the disk** (audit on tmpfs) at $RATE req/s: added p50 $(diff_ms "${R[rate_tmpfs.p50_us]}" "${R[rate_direct.p50_us]}"), p99 $(diff_ms "${R[rate_tmpfs.p99_us]}" "${R[rate_direct.p99_us]}"), p99.9 $(diff_ms "${R[rate_tmpfs.p999_us]}" "${R[rate_direct.p999_us]}"); gateway's histograms: request ${GW2_REQ_MEAN} µs, audit hand-off ${GW2_AUDIT_MEAN} µs, upstream ${GW2_UP_MEAN} µs, policy ${GW2_POLICY_MEAN} µs; saturated $(awk -v a="${R[sat_tmpfs.rps]}" -v b="${R[sat_nginx.rps]}" 'BEGIN {printf "%.0f%%", 100 * a / b}') of nginx (${R[sat_tmpfs.rps]} req/s)
EOF
    fi
    cat <<EOF
EOF
    if [ ${#FLOOR_MODES[@]} -gt 0 ]; then
        cat <<EOF

**The floor** (examples/floor_proxy.rs: the gateway's parts with none of its work; record =
~300 bytes appended and fdatasynced on the audit disk before forwarding). Added = minus direct.

| floor proxy | saturated req/s | CPU/req saturated | $RATE req/s: added p50 / p99 | CPU/req, switches/req | lonely: added p50 / p99 | CPU/req lonely |
|---|---:|---:|---|---|---|---:|
EOF
        for mode in "${FLOOR_MODES[@]}"; do
            printf '| %s | %s | %s µs | %s / %s | %s µs, %s + %s | %s / %s | %s µs |\n' "$mode" \
                "${R[sat_floor_$mode.rps]}" "${R[sat_floor_$mode.cpu_us]}" \
                "$(diff_ms "${R[rate_floor_$mode.p50_us]-0}" "${R[rate_direct.p50_us]-0}")" \
                "$(diff_ms "${R[rate_floor_$mode.p99_us]-0}" "${R[rate_direct.p99_us]-0}")" \
                "${R[rate_floor_$mode.cpu_us]-n/a}" "${R[rate_floor_$mode.vcsw]-n/a}" "${R[rate_floor_$mode.ivcsw]-n/a}" \
                "$(diff_ms "${R[idle_floor_$mode.p50_us]-0}" "${R[idle_direct.p50_us]-0}")" \
                "$(diff_ms "${R[idle_floor_$mode.p99_us]-0}" "${R[idle_direct.p99_us]-0}")" \
                "${R[idle_floor_$mode.cpu_us]-n/a}"
        done
        printf '| waguard (for comparison) | %s | %s µs | %s / %s | %s µs, %s + %s | %s / %s | %s µs |\n\n' \
            "${R[sat_waguard.rps]}" "${R[sat_waguard.cpu_us]}" \
            "$(diff_ms "${R[rate_waguard.p50_us]-0}" "${R[rate_direct.p50_us]-0}")" \
            "$(diff_ms "${R[rate_waguard.p99_us]-0}" "${R[rate_direct.p99_us]-0}")" \
            "${R[rate_waguard.cpu_us]-n/a}" "${R[rate_waguard.vcsw]-n/a}" "${R[rate_waguard.ivcsw]-n/a}" \
            "$(diff_ms "${R[idle_waguard.p50_us]-0}" "${R[idle_direct.p50_us]-0}")" \
            "$(diff_ms "${R[idle_waguard.p99_us]-0}" "${R[idle_direct.p99_us]-0}")" \
            "${R[idle_waguard.cpu_us]-n/a}"
    fi
    if [ ${#FLOOD_STEPS[@]} -gt 0 ]; then
        cat <<EOF
- **anonymous flood, one core**: gateway pinned to CPU 0, oha on the others; legitimate signed
  shares at $FLOOD_LEGIT req/s (open loop) alongside garbage (a claimed key with a malformed,
  stale signature: refused 403) at rising fixed rates, ${FLOOD_SECS} s each. Quiet legitimate p99
  $(ms "$QUIET_P99"). **Highest garbage rate shed with the legitimate p99 within 2x quiet:
  ${FLOOD_BEST:-none of the steps} req/s.** The $FLOOD_AUTH_TOTAL refused requests took
  $FLOOD_SUMMARY_BYTES bytes of audit log ($FLOOD_SUMMARIES \`auth_failures\` summary records); the file's
  $FLOOD_AUDIT_BYTES bytes are otherwise the $FLOOD_DECISIONS legitimate decisions and their outcomes.

| garbage offered (req/s) | shed (req/s) | answered 403 | other / errors | legitimate p99 | within 2x quiet |
|---:|---:|---:|---:|---:|---|
$(printf '%s\n' "${FLOOD_STEPS[@]}")

EOF
    fi
    cat <<EOF
- **saturated throughput, waguard / nginx plain proxy: $RATIO** (${R[sat_waguard.rps]} vs ${R[sat_nginx.rps]} req/s)
- **RSS** of the waguard process: $(mib "$RSS_START") at start; after the load phases $(mib "$RSS_AFTER_LOAD"), peak (VmHWM) $(mib "$HWM_AFTER_LOAD"); **with $IDLE_OPEN open idle connections $(mib "$RSS_IDLE")** (peak $(mib "$HWM_IDLE"))
- gateway counters (/metrics) at the end; audit file: $AUDIT_RECORDS records ($AUDIT_DECISIONS decision, $AUDIT_OUTCOMES outcome), \`waguard audit verify\`: ${AUDIT_VERIFY//$'\n'/ }

\`\`\`
$METRICS
\`\`\`
EOF
)
echo
echo "$REPORT"
echo "$REPORT" >"$BENCH/results.md"
echo
log "written to bench/results.md"

if [ "${#FAILED[@]}" != 0 ]; then
    printf '[bench] FAILED:\n' >&2
    printf '  - %s\n' "${FAILED[@]}" >&2
    echo >>"$BENCH/results.md"
    printf '**This run FAILED:**\n' >>"$BENCH/results.md"
    printf -- '- %s\n' "${FAILED[@]}" >>"$BENCH/results.md"
    exit 1
fi
