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

# The start of an nginx config (temp prefix DIR, 2 workers, access log off) whose http block
# holds the fast upstream on 127.0.0.1:PORT: every request answered 200 with a canned
# CreateTemplateShare answer. The http block is left open for the caller to add to and close.
SHARE_ID=0123456789abcdef0123456789abcdef
TEMPLATE_ARN="arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef"
nginx_fast_upstream() { # dir port
    [ "$(id -u)" = 0 ] && echo "user root;"
    cat <<EOF
worker_processes 2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;

    # The fast upstream: a canned CreateTemplateShare answer.
    server {
        listen 127.0.0.1:$2 backlog=4096;
        location / {
            default_type application/json;
            add_header x-amzn-RequestId \$request_id always;
            return 200 '{"TemplateArn":"$TEMPLATE_ARN","ShareId":"$SHARE_ID"}';
        }
    }
EOF
}

# The one caller the benchmarks sign as (team payments, which the shipped policy lets share
# templates with the approved OU that bench/sign.py names), as a callers file.
CALLER_KEY=AKWGBENCHPAYMENTS01
CALLER_SECRET=bench-payments-secret-0001
bench_callers() {
    cat <<EOF
[[callers]]
access_key_id = "$CALLER_KEY"
secret_access_key = "$CALLER_SECRET"
principal = "bench@example.com"
team = "payments"
EOF
}
