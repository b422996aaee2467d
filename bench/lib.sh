# Shared by bench/run.sh and bench/knockout.sh (sourced).

# N free ports on 127.0.0.1, on one line.
free_ports() {
    python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
}

# Waits up to 30 s for a listener on 127.0.0.1:port; fails early if pid has exited.
wait_port() { # name port pid
    for _ in $(seq 300); do
        kill -0 "$3" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
