#!/usr/bin/env bash
# What each part of the gateway costs in place, saturated: the same gateway started several
# times with one part knocked out by configuration, plus the floor proxy (examples/floor_proxy.rs:
# the same HTTP parts and a durable record, none of the work), driven in turn by the same wrk
# load for several alternating rounds. The difference in CPU per request to the full gateway is
# what the knocked-out part costs with everything else around it (cache misses included), which
# micro-benchmarks of the part alone do not show.
#
#   bench/knockout.sh            (after `cargo build --release --bin waguard --example floor_proxy`)
#
# Knobs: KO_ROUNDS=3  KO_SECONDS=8  KO_CONNS=64  KO_THREADS=2
#        KO_VARIANTS="full no-log-line allow-all-policy audit-on-tmpfs floor"  which to run
#        KO_BIN=$CARGO_TARGET_DIR/release/waguard  the build every variant but other-binary runs
#        KO_OTHER_BIN=PATH  adds "other-binary": another waguard build, full configuration (A/B
#                           of a change against the same load, alternated round by round)
# Needs: wrk, nginx, python3 with botocore (bench/run.sh installs them). Traffic stays on
# 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${KO_BIN:-$TARGET_DIR/release/waguard}
FLOOR_BIN="$TARGET_DIR/release/examples/floor_proxy"
ROUNDS=${KO_ROUNDS:-3}
SECONDS_EACH=${KO_SECONDS:-8}
CONNS=${KO_CONNS:-64}
THREADS=${KO_THREADS:-2}
for x in "$BIN" "$FLOOR_BIN"; do
    [ -x "$x" ] || { echo "knockout: $x missing (cargo build --release --bin waguard --example floor_proxy)" >&2; exit 1; }
done
log() { printf '[knockout %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/waguard-knockout.XXXXXX")
SHM=$(mktemp -d /dev/shm/waguard-knockout.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP" "$SHM"
}
trap cleanup EXIT

read -ra PORTS < <(free_ports 16)
UP_PORT=${PORTS[0]}

mkdir -p "$TMP/nginx"
{
    nginx_fast_upstream "$TMP/nginx" "$UP_PORT"
    echo "}"
} >"$TMP/nginx/nginx.conf"
nginx -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_port nginx "$UP_PORT" "${PIDS[-1]}" || { echo "nginx did not start" >&2; exit 1; }

bench_callers >"$TMP/callers.toml"
# The knocked-out policy: allows everything with one rule, so what remains is the engine's fixed
# cost per decision; the real policy's own cost is the difference.
mkdir -p "$TMP/allow-all"
cat >"$TMP/allow-all/authz.rego" <<'EOF'
package waguard.authz

decision := {"allow": true, "reasons": []}
EOF

declare -A PORT PID
NAMES=()
VARIANTS=" ${KO_VARIANTS:-full no-log-line allow-all-policy audit-on-tmpfs floor} "
[ -n "${KO_OTHER_BIN:-}" ] && VARIANTS="$VARIANTS other-binary "
wanted() { [[ $VARIANTS == *" $1 "* ]]; }
start_gateway() { # name policy_dir audit_file [env...]
    local name=$1 dir="$TMP/$1" port=${PORTS[$((${#NAMES[@]} * 2 + 1))]} admin=${PORTS[$((${#NAMES[@]} * 2 + 2))]}
    wanted "$name" || return 0
    mkdir -p "$dir"
    cat >"$dir/waguard.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"

[upstream]
endpoint = "http://127.0.0.1:$UP_PORT"
allowed_regions = ["us-east-1"]

[policy]
dir = "$2"

[callers]
file = "$TMP/callers.toml"

[audit]
file = "$3"
EOF
    shift 3
    env -u AWS_SESSION_TOKEN -u AWS_PROFILE AWS_ACCESS_KEY_ID=AKWGBENCHSERVICE001 \
        AWS_SECRET_ACCESS_KEY=bench-service-secret-0001 AWS_EC2_METADATA_DISABLED=true \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "$@" \
        "${GATEWAY_BIN:-$BIN}" serve --config "$dir/waguard.toml" 2>"$dir/log" &
    PID[$name]=$!
    PIDS+=($!)
    PORT[$name]=$port
    NAMES+=("$name")
    wait_port "$name" "$port" "${PID[$name]}" || { echo "$name did not start: $(tail -3 "$dir/log")" >&2; exit 1; }
}
mkdir -p "$TMP/audit"
start_gateway full "$ROOT/policies" "$TMP/audit/full.jsonl"
start_gateway no-log-line "$ROOT/policies" "$TMP/audit/no-log.jsonl" RUST_LOG=warn
start_gateway allow-all-policy "$TMP/allow-all" "$TMP/audit/allow-all.jsonl"
start_gateway audit-on-tmpfs "$ROOT/policies" "$SHM/audit.jsonl"
if [ -n "${KO_OTHER_BIN:-}" ]; then
    [ -x "$KO_OTHER_BIN" ] || { echo "knockout: $KO_OTHER_BIN is not executable" >&2; exit 1; }
    GATEWAY_BIN=$KO_OTHER_BIN start_gateway other-binary "$ROOT/policies" "$TMP/audit/other.jsonl"
fi
if wanted floor; then
    floor_port=${PORTS[$((${#NAMES[@]} * 2 + 1))]}
    "$FLOOR_BIN" "127.0.0.1:$floor_port" "http://127.0.0.1:$UP_PORT" thread "$TMP/audit/floor.jsonl" 2>"$TMP/floor.log" &
    PID[floor]=$!
    PIDS+=($!)
    PORT[floor]=$floor_port
    NAMES+=(floor)
    wait_port floor "$floor_port" "${PID[floor]}" || { echo "floor_proxy did not start" >&2; exit 1; }
fi
wanted full || { echo "knockout: the variants must include full (the reference)" >&2; exit 1; }
sleep 2

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{t += $1} END {printf "%.0f", t}'; }
declare -A RPS CPU
for round in $(seq "$ROUNDS"); do
    for name in "${NAMES[@]}"; do
        port=${PORT[$name]}
        BENCH_ACCESS_KEY_ID=$CALLER_KEY BENCH_SECRET_ACCESS_KEY=$CALLER_SECRET \
            python3 "$BENCH/sign.py" "127.0.0.1:$port" "$TMP/req" >/dev/null
        WRK_DELAY_MS=0 wrk -t"$THREADS" -c"$CONNS" -d2s --timeout 5s -s "$TMP/req.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
        t0=$(cpu_ns "${PID[$name]}")
        WRK_DELAY_MS=0 wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_EACH}s" --timeout 5s -s "$TMP/req.lua" \
            "http://127.0.0.1:$port" >"$TMP/wrk.txt" 2>&1
        t1=$(cpu_ns "${PID[$name]}")
        line=$(grep '^BENCH ' "$TMP/wrk.txt") || { echo "$name: no wrk result: $(cat "$TMP/wrk.txt")" >&2; exit 1; }
        declare -A W=()
        for kv in ${line#BENCH }; do W[${kv%%=*}]=${kv#*=}; done
        errors=$((W[connect] + W[read] + W[write] + W[timeout]))
        [ "${W[status]}" = 0 ] && [ "$errors" = 0 ] ||
            { echo "$name: ${W[status]} answers not 2xx, $errors socket errors or timeouts" >&2; exit 1; }
        rps=$(awk -v n="${W[requests]}" -v d="${W[duration_us]}" 'BEGIN {printf "%.0f", n / (d / 1e6)}')
        cpu=$(awk -v t="$((t1 - t0))" -v n="${W[requests]}" 'BEGIN {printf "%.0f", t / 1e3 / n}')
        RPS[$name]="${RPS[$name]:-}$rps "
        CPU[$name]="${CPU[$name]:-}$cpu "
        log "round $round $name: $rps req/s, $cpu us of CPU per request"
    done
done

echo
echo "| variant | saturated req/s (each round) | CPU per request (each round) | median CPU, vs full |"
echo "|---|---|---|---:|"
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
full_median=$(median "${CPU[full]}")
for name in "${NAMES[@]}"; do
    m=$(median "${CPU[$name]}")
    printf '| %s | %s | %s µs | %s µs (%+d) |\n' "$name" "${RPS[$name]% }" "${CPU[$name]% }" "$m" "$((m - full_median))"
done
