#!/usr/bin/env bash
# edge_proxy.sh — how much does the yunzhen edge cost in front of a service, compared with nginx?
#
# A benchmark command, not a test: it never fails on "slow", only when something does not work.
# It starts the release `registration` service and the `edge` in front of it, plus an nginx reverse proxy
# configured the same way, and runs wrk against three targets:
#   direct  http://127.0.0.1:$REG_PORT/departments                  (no proxy: the ceiling)
#   edge    http://127.0.0.1:$EDGE_PORT/api/registration/departments
#   nginx   http://127.0.0.1:$NGX_PORT/api/registration/departments
# Rounds are interleaved (every round runs all three targets, the order rotating) and the median of the
# rounds is reported, so machine noise hits all three alike.
#
# Usage: bash Tests/Benchmarks/edge_proxy.sh [--bin DIR] [--duration D] [--connections N]
#                                             [--threads N] [--rounds N] [--out FILE]
#        bash Tests/Benchmarks/edge_proxy.sh --selftest     (parser/report check on canned wrk output)
# Environment (flags win): BIN (.build/release), DURATION (10s), CONNECTIONS (64), THREADS (1),
#   ROUNDS (3), WARMUP (2s), OUT (unset: when set, the results are also written there as JSON).
# Progress goes to stderr, the result table to stdout.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

BIN=${BIN:-.build/release}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
OUT=${OUT:-}
# The registration route to measure: `openapi.yaml` (static bytes: the proxies' own cost dominates) or
# `departments` (a database read and JSON encoding: a realistic API call).
ROUTE=${ROUTE:-openapi.yaml}
MODE=run

TARGETS=(direct edge nginx)

log() { printf 'edge_proxy: %s\n' "$*" >&2; }
die() { printf 'edge_proxy: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

while (($#)); do
    case $1 in
        --bin) BIN=${2:?--bin needs a directory}; shift 2 ;;
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --connections) CONNECTIONS=${2:?--connections needs a value}; shift 2 ;;
        --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        --route) ROUTE=${2:?--route needs a path}; shift 2 ;;
        --selftest) MODE=selftest; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

# ---------------------------------------------------------------------------------------------------------
# Parsing and reporting (python3). Modes:
#   summary FILE       one line for a single wrk output (printed after every run)
#   report  DIR        DIR/<target>/<round>.txt -> table on stdout, JSON to $OUT when set
#   selftest           canned wrk output through the parser and the report
# ---------------------------------------------------------------------------------------------------------
IFS= read -r -d '' PY_REPORT <<'PY' || true
import json, os, re, statistics, sys, tempfile

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}

def to_ms(token):
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)", token)
    if not m:
        raise ValueError(f"unrecognised wrk latency value {token!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]

def parse_wrk(text):
    m = re.search(r"^Requests/sec:\s+([0-9]+(?:\.[0-9]+)?)\s*$", text, re.M)
    if not m:
        raise ValueError("no 'Requests/sec:' line in wrk output")
    r = {"rps": float(m.group(1))}
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        # Only the "Latency Distribution" block has lines that start with the percentage.
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)\s*$", text, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency line in wrk output (was wrk run with --latency?)")
        r[key] = to_ms(m.group(1))
    m = re.search(r"^\s*([0-9]+) requests in ", text, re.M)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", text)
    socket = [int(x) for x in m.groups()] if m else [0, 0, 0, 0]
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), socket))
    r["errors"] = r["non2xx"] + sum(socket)
    return r

def summary(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        r = parse_wrk(f.read())
    return (f"{r['rps']:10.0f} req/s  p50 {r['p50_ms']:8.3f} ms  p99 {r['p99_ms']:8.3f} ms"
            f"  errors {r['errors']}")

def median(values):
    return statistics.median(values) if values else None

def ratio(a, b):
    return a / b if a is not None and b else None

def build(results_dir, targets, env):
    out = {"targets": {}}
    for t in targets:
        tdir = os.path.join(results_dir, t)
        files = sorted((f for f in os.listdir(tdir) if f.endswith(".txt")), key=lambda f: int(f[:-4]))
        rounds = []
        for f in files:
            with open(os.path.join(tdir, f), encoding="utf-8", errors="replace") as fh:
                try:
                    rounds.append(parse_wrk(fh.read()))
                except ValueError as e:
                    raise SystemExit(f"edge_proxy: error: {t} round {f[:-4]}: {e}")
        errs = {"non2xx": sum(r["non2xx"] for r in rounds)}
        for k in ("connect", "read", "write", "timeout"):
            errs[k] = sum(r["socket_errors"][k] for r in rounds)
        out["targets"][t] = {
            "url": env.get(f"BENCH_URL_{t}"),
            "rps": median([r["rps"] for r in rounds]),
            "p50_ms": median([r["p50_ms"] for r in rounds]),
            "p99_ms": median([r["p99_ms"] for r in rounds]),
            "errors": sum(errs.values()),
            "error_detail": errs,
            "rounds": rounds,
        }
    tg = out["targets"]
    get = lambda t, k: tg.get(t, {}).get(k)
    out["ratios"] = {
        "edge_nginx_throughput": ratio(get("edge", "rps"), get("nginx", "rps")),
        "edge_nginx_p99": ratio(get("edge", "p99_ms"), get("nginx", "p99_ms")),
        "edge_direct_throughput": ratio(get("edge", "rps"), get("direct", "rps")),
        "nginx_direct_throughput": ratio(get("nginx", "rps"), get("direct", "rps")),
    }
    out["config"] = {
        "duration": env.get("BENCH_DURATION"), "connections": int(env.get("BENCH_CONNECTIONS", "0")),
        "threads": int(env.get("BENCH_THREADS", "0")), "rounds": int(env.get("BENCH_ROUNDS", "0")),
        "warmup": env.get("BENCH_WARMUP"), "route": env.get("BENCH_ROUTE"), "nginx_worker_processes": "auto",
        "nginx_workers": int(env["BENCH_NGINX_WORKERS"]) if env.get("BENCH_NGINX_WORKERS", "").isdigit() else None,
    }
    out["machine"] = {
        "nproc": env.get("BENCH_NPROC"), "kernel": env.get("BENCH_KERNEL"), "cpu": env.get("BENCH_CPU"),
        "wrk": env.get("BENCH_WRK_VERSION"), "nginx": env.get("BENCH_NGINX_VERSION"),
    }
    return out

def fmt(v, spec):
    return "-" if v is None else format(v, spec)

def render(data):
    lines = []
    tg = data["targets"]
    c = data["config"]
    lines.append(f"edge proxy benchmark: wrk -t{c['threads']} -c{c['connections']} -d{c['duration']} --latency,"
                 f" median of {c['rounds']} interleaved round(s), warm-up {c['warmup']} per target")
    lines.append(f"route: registration /{c.get('route') or '?'} (edge and nginx: /api/registration/{c.get('route') or '?'})")
    lines.append("")
    lines.append(f"{'target':<8} {'req/s':>12} {'p50 ms':>10} {'p99 ms':>10} {'errors':>8}")
    for t, v in tg.items():
        lines.append(f"{t:<8} {fmt(v['rps'], '12.1f')} {fmt(v['p50_ms'], '10.3f')} {fmt(v['p99_ms'], '10.3f')}"
                     f" {v['errors']:>8}")
    r = data["ratios"]
    lines.append("")
    lines.append(f"edge/nginx throughput ratio  {fmt(r['edge_nginx_throughput'], '.3f')}   (>1: edge serves more req/s)")
    lines.append(f"edge/nginx p99 ratio         {fmt(r['edge_nginx_p99'], '.3f')}   (<1: edge has the shorter tail)")
    lines.append(f"share of direct throughput   edge {fmt(r['edge_direct_throughput'], '.3f')}, "
                 f"nginx {fmt(r['nginx_direct_throughput'], '.3f')}")
    lines.append("")
    m = data["machine"]
    lines.append(f"machine: nproc={m['nproc']}, kernel {m['kernel']}, cpu {m['cpu']}")
    lines.append(f"tools: {m['wrk']}; {m['nginx']}")
    lines.append(f"note: nginx runs worker_processes auto ({c['nginx_workers'] or '?'} worker(s) here) because the edge also"
                 f" runs on SwiftNIO event-loop threads sized to the core count; wrk, both proxies and registration"
                 f" share the same {m['nproc']} cores, so read the ratios, not the absolute numbers.")
    lines.append("errors = non-2xx/3xx responses + socket errors (connect/read/write/timeout), summed over the rounds.")
    return "\n".join(lines)

def report(results_dir, targets):
    data = build(results_dir, targets, os.environ)
    print(render(data))
    out = os.environ.get("OUT")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.write("\n")
        print(f"\nJSON written to {out}")

SAMPLE = """Running 10s test @ http://127.0.0.1:8101/departments
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  410.55us  30.12ms   90.12%
    Req/Sec    41.45k     2.10k   45.01k    80.00%
  Latency Distribution
     50%  {p50}
     75%    1.20ms
     90%    2.01ms
     99%    {p99}
  412345 requests in 10.00s, 98.12MB read
{errors}Requests/sec:  {rps}
Transfer/sec:      9.81MB
"""
ERRORS = "  Non-2xx or 3xx responses: 12\n  Socket errors: connect 0, read 0, write 0, timeout 3\n"

def selftest():
    def close(a, b):
        assert abs(a - b) < 1e-9, (a, b)
    r = parse_wrk(SAMPLE.format(p50="512.00us", p99="3.10ms", rps="41234.56", errors=ERRORS))
    close(r["rps"], 41234.56); close(r["p50_ms"], 0.512); close(r["p99_ms"], 3.10)
    assert r["requests"] == 412345 and r["non2xx"] == 12 and r["errors"] == 15, r
    assert r["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 3}, r
    r = parse_wrk(SAMPLE.format(p50="2.00s", p99="1.50m", rps="12.00", errors=""))
    close(r["p50_ms"], 2000.0); close(r["p99_ms"], 90000.0); assert r["errors"] == 0, r
    for bad in (SAMPLE.format(p50="1.0ms", p99="2.0ms", rps="", errors=""),
                SAMPLE.format(p50="1.0ms", p99="2.0xs", rps="5.0", errors=""),
                SAMPLE.replace("     99%    {p99}\n", "").format(p50="1.0ms", rps="5.0", errors="")):
        try:
            parse_wrk(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("bad wrk output was accepted")
    # Three rounds per target -> medians, error sums and ratios.
    rounds = {
        "direct": [("100.00us", "1.00ms", "90000.00", ""), ("120.00us", "1.20ms", "80000.00", ""),
                   ("110.00us", "0.90ms", "85000.00", "")],
        "edge": [("300.00us", "3.00ms", "40000.00", ERRORS), ("310.00us", "2.00ms", "42000.00", ""),
                 ("290.00us", "4.00ms", "41000.00", "")],
        "nginx": [("200.00us", "2.00ms", "50000.00", ""), ("1.00ms", "8.00ms", "30000.00", ""),
                  ("250.00us", "2.50ms", "52000.00", "")],
    }
    with tempfile.TemporaryDirectory() as d:
        for t, rs in rounds.items():
            os.makedirs(os.path.join(d, t))
            for i, (p50, p99, rps, errs) in enumerate(rs, 1):
                with open(os.path.join(d, t, f"{i}.txt"), "w") as f:
                    f.write(SAMPLE.format(p50=p50, p99=p99, rps=rps, errors=errs))
        data = build(d, ["direct", "edge", "nginx"], {"BENCH_ROUNDS": "3", "BENCH_THREADS": "1",
                                                       "BENCH_CONNECTIONS": "64", "BENCH_DURATION": "10s"})
        tg = data["targets"]
        close(tg["direct"]["rps"], 85000.0); close(tg["edge"]["rps"], 41000.0); close(tg["nginx"]["rps"], 50000.0)
        close(tg["edge"]["p50_ms"], 0.300); close(tg["nginx"]["p99_ms"], 2.5); close(tg["edge"]["p99_ms"], 3.0)
        assert tg["edge"]["errors"] == 15 and tg["nginx"]["errors"] == 0, tg
        close(data["ratios"]["edge_nginx_throughput"], 41000.0 / 50000.0)
        close(data["ratios"]["edge_nginx_p99"], 3.0 / 2.5)
        text = render(data)
        assert "edge/nginx throughput ratio  0.820" in text and "edge/nginx p99 ratio         1.200" in text, text
        print(text)
    print("\nselftest: ok")

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "summary":
        print(summary(sys.argv[2]))
    elif mode == "report":
        report(sys.argv[2], sys.argv[3:])
    elif mode == "selftest":
        selftest()
    else:
        raise SystemExit(f"unknown mode {mode}")
PY

py() { python3 -c "$PY_REPORT" "$@"; }

# ---------------------------------------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------------------------------------
NGINX=""
find_nginx() {
    NGINX=$(command -v nginx 2>/dev/null || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    [[ -n $NGINX ]]
}

# write_nginx_conf PREFIX_DIR LISTEN_PORT UPSTREAM_PORT
write_nginx_conf() {
    local dir=$1 port=$2 upstream=$3 keepalive=64 user_line=""
    ((CONNECTIONS > keepalive)) && keepalive=$CONNECTIONS
    # As root, nginx would switch its workers to "nobody"/group "nobody", which Debian does not have (and
    # which could not enter the 0700 temp dir). Keep the workers as the invoking user.
    [[ $(id -u) -eq 0 ]] && user_line="user root;"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
# generated by Tests/Benchmarks/edge_proxy.sh
daemon off;
$user_line
# The edge runs on SwiftNIO event-loop threads sized to the cores, so nginx gets one worker per core too.
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    # nginx closes a client keep-alive connection after 1000 requests by default; wrk would then reconnect.
    keepalive_requests 1000000;

    upstream registration_upstream {
        server 127.0.0.1:$upstream;
        keepalive $keepalive;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:$port;

        location /api/registration/ {
            proxy_pass http://registration_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Request-ID \$request_id;
        }

        location / {
            return 404;
        }
    }
}
EOF
}

# nginx_args PREFIX_DIR -> NGX_ARGS (-e keeps nginx away from /var/log/nginx before it has read the config).
# nginx is then run directly, not through a function, so that $! is the nginx master itself.
NGX_ARGS=()
nginx_args() {
    local dir=$1
    NGX_ARGS=()
    if "$NGINX" -h 2>&1 | grep -q -- '-e filename'; then NGX_ARGS=(-e "$dir/error.log"); fi
    NGX_ARGS+=(-c "$dir/nginx.conf" -p "$dir/")
}

# ---------------------------------------------------------------------------------------------------------
# --selftest: no services, no wrk; nginx -t only when nginx is installed
# ---------------------------------------------------------------------------------------------------------
if [[ $MODE == selftest ]]; then
    py selftest
    if find_nginx; then
        d=$(mktemp -d)
        write_nginx_conf "$d" 18080 18101
        nginx_args "$d"
        if "$NGINX" "${NGX_ARGS[@]}" -t -q; then log "nginx -t: generated configuration is valid"
        else rm -rf "$d"; die "nginx -t rejected the generated configuration"; fi
        rm -rf "$d"
    else
        log "nginx not installed: skipped the nginx -t check"
    fi
    exit 0
fi

# ---------------------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------------------
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer, got '$CONNECTIONS'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$THREADS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be >= THREADS ($THREADS) for wrk"
[[ $DURATION =~ ^[1-9][0-9]*[smh]?$ ]] || die "DURATION must look like 10s, 2m or 30, got '$DURATION'"
[[ $WARMUP =~ ^[1-9][0-9]*[smh]?$ ]] || die "WARMUP must look like 2s, got '$WARMUP'"

if [[ $BIN != /* ]]; then
    if [[ -d $BIN ]]; then BIN=$(cd "$BIN" && pwd)
    elif [[ -d $REPO/$BIN ]]; then BIN=$(cd "$REPO/$BIN" && pwd)
    fi
fi
for exe in registration edge yunzhen; do
    [[ -x $BIN/$exe ]] || die "$BIN/$exe not found or not executable (build first: swift build -c release)"
done
if [[ -n $OUT && $OUT != /* ]]; then OUT=$PWD/$OUT; fi
PUBLIC_DIR=$REPO/Services/edge/Public
[[ -d $PUBLIC_DIR ]] || log "warning: $PUBLIC_DIR does not exist (the edge may refuse to start)"
command -v python3 >/dev/null 2>&1 || die "python3 is required"
command -v curl >/dev/null 2>&1 || die "curl is required"

# ---------------------------------------------------------------------------------------------------------
# 1. wrk and nginx, installed only when missing
# ---------------------------------------------------------------------------------------------------------
ensure_packages() {
    local missing=() sudo=()
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    find_nginx || missing+=(nginx)
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run 'apt-get install ${missing[*]}' as root"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them by hand"
    log "installing ${missing[*]} with apt-get"
    if ! ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        log "apt-get install failed; running apt-get update once and retrying"
        ${sudo[@]+"${sudo[@]}"} apt-get update >&2
        ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${missing[@]}" >&2
    fi
    command -v wrk >/dev/null 2>&1 || die "wrk is still missing after apt-get install"
    find_nginx || die "nginx is still missing after apt-get install"
}
ensure_packages

# ---------------------------------------------------------------------------------------------------------
# Process bookkeeping; everything started here is stopped on exit, and the temp dir removed
# ---------------------------------------------------------------------------------------------------------
TMP=""
PIDS=()
WRK_PID=""
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    [[ -n $WRK_PID ]] && PIDS=("$WRK_PID" ${PIDS[@]+"${PIDS[@]}"})
    # belt and braces: the master named in nginx's own pid file (normally the same process as NGX_PID)
    if [[ -n $TMP && -s $TMP/nginx/nginx.pid ]]; then
        pid=$(cat "$TMP/nginx/nginx.pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] && PIDS+=("$pid")
    fi
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $TMP && -d $TMP ]]; then rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/yunzhen-edge-bench.XXXXXX")
mkdir -p "$TMP/data" "$TMP/results"

# Three distinct free loopback ports (held together while choosing, so they differ).
read -r REG_PORT EDGE_PORT NGX_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
PY
)

tail_log() {
    if [[ -f $1 ]]; then
        printf -- '--- last lines of %s ---\n' "$1" >&2
        tail -n 30 "$1" >&2
    fi
}

# http_code URL -> status code, 000 when nothing answered
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" 2>/dev/null || true; }

# wait_for NAME PID LOG URL WANT(200|any) — poll until URL answers, 30s deadline
wait_for() {
    local name=$1 pid=$2 logf=$3 url=$4 want=$5 code deadline=$((SECONDS + 30))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail_log "$logf"
            die "$name exited before answering $url"
        fi
        code=$(http_code "$url")
        if [[ $want == any && $code != 000 ]] || [[ $code == "$want" ]]; then return 0; fi
        if ((SECONDS >= deadline)); then
            tail_log "$logf"
            die "$name did not answer $url with $want within 30s (last status $code)"
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------------------------
# 2. registration, seeded with one department
# ---------------------------------------------------------------------------------------------------------
log "starting registration on 127.0.0.1:$REG_PORT"
# A throwaway token-signing key pair; development, so the sandbox SMS gateway is allowed. The routes measured are
# public, so no token is sent; the edge still needs the public key to start, and the seed signs its admin token
# with the private key.
KEYS=$("$BIN/yunzhen" keys generate --kid bench)
SIGNING_KEY=$(sed -n 's/^YUNZHEN_AUTH_SIGNING_KEY=//p' <<<"$KEYS")
VERIFY_KEYS=$(sed -n 's/^YUNZHEN_AUTH_VERIFY_KEYS=//p' <<<"$KEYS")
env YUNZHEN_DATA="$TMP/data" YUNZHEN_HOST=127.0.0.1 YUNZHEN_PORT="$REG_PORT" YUNZHEN_LOG_LEVEL=warning \
    YUNZHEN_ENVIRONMENT=development YUNZHEN_AUTH_SIGNING_KEY="$SIGNING_KEY" \
    "$BIN/registration" >"$TMP/registration.log" 2>&1 &
REG_PID=$!
PIDS+=("$REG_PID")
wait_for registration "$REG_PID" "$TMP/registration.log" "http://127.0.0.1:$REG_PORT/health/ready" 200

# ---------------------------------------------------------------------------------------------------------
# 3. edge in front of it
# ---------------------------------------------------------------------------------------------------------
log "starting edge on 127.0.0.1:$EDGE_PORT"
env YUNZHEN_HOST=127.0.0.1 YUNZHEN_PORT="$EDGE_PORT" YUNZHEN_LOG_LEVEL=warning \
    YUNZHEN_UPSTREAM_REGISTRATION="http://127.0.0.1:$REG_PORT" YUNZHEN_EDGE_PUBLIC_DIR="$PUBLIC_DIR" \
    YUNZHEN_AUTH_VERIFY_KEYS="$VERIFY_KEYS" "$BIN/edge" >"$TMP/edge.log" 2>&1 &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
wait_for edge "$EDGE_PID" "$TMP/edge.log" "http://127.0.0.1:$EDGE_PORT/health/live" 200

# One department, written as an admin would, through the edge (`yunzhen seed` signs its own admin token).
mkdir -p "$TMP/seeds"
cat >"$TMP/seeds/departments.json" <<'JSON'
[{"id":"hematology","name":"血液科","nameEn":"Hematology","description":"血液系统疾病的诊断与治疗 (diagnosis and treatment of blood disorders)"}]
JSON
if ! YUNZHEN_AUTH_SIGNING_KEY="$SIGNING_KEY" "$BIN/yunzhen" seed --edge "http://127.0.0.1:$EDGE_PORT" \
    --seeds "$TMP/seeds" >"$TMP/seed.out" 2>&1; then
    cat "$TMP/seed.out" >&2
    tail_log "$TMP/registration.log"
    die "seeding the hematology department failed"
fi

# ---------------------------------------------------------------------------------------------------------
# 4. nginx configured as the same reverse proxy
# ---------------------------------------------------------------------------------------------------------
NGX_DIR=$TMP/nginx
write_nginx_conf "$NGX_DIR" "$NGX_PORT" "$REG_PORT"
nginx_args "$NGX_DIR"
"$NGINX" "${NGX_ARGS[@]}" -t -q 2>"$TMP/nginx-t.log" || { cat "$TMP/nginx-t.log" >&2; die "nginx -t rejected $NGX_DIR/nginx.conf"; }
log "starting nginx on 127.0.0.1:$NGX_PORT (worker_processes auto)"
"$NGINX" "${NGX_ARGS[@]}" >"$TMP/nginx.out" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")
wait_for nginx "$NGX_PID" "$NGX_DIR/error.log" "http://127.0.0.1:$NGX_PORT/" any
NGINX_WORKERS=$( (grep -ls "^PPid:[[:space:]]*$NGX_PID\$" /proc/[0-9]*/status 2>/dev/null || true) | wc -l | tr -d ' ')

# ---------------------------------------------------------------------------------------------------------
# 5. check, warm up, measure (interleaved rounds)
# ---------------------------------------------------------------------------------------------------------
declare -A URL=(
    [direct]="http://127.0.0.1:$REG_PORT/$ROUTE"
    [edge]="http://127.0.0.1:$EDGE_PORT/api/registration/$ROUTE"
    [nginx]="http://127.0.0.1:$NGX_PORT/api/registration/$ROUTE"
)
declare -A LOGF=([direct]="$TMP/registration.log" [edge]="$TMP/edge.log" [nginx]="$NGX_DIR/error.log")

for t in "${TARGETS[@]}"; do
    code=$(curl -sS -o "$TMP/check-$t.out" -w '%{http_code}' --max-time 5 "${URL[$t]}" || true)
    if [[ $code != 200 ]] || ! grep -q -e '"hematology"' -e '^openapi: 3' "$TMP/check-$t.out"; then
        head -c 2000 "$TMP/check-$t.out" >&2 2>/dev/null || true; echo >&2
        tail_log "${LOGF[$t]}"
        die "$t: GET ${URL[$t]} answered $code, want 200 with the seeded department or the OpenAPI document"
    fi
done
log "all three targets answer 200 for /$ROUTE"

# run_wrk DURATION URL OUTFILE — in the background so a signal reaches our trap without waiting for wrk
run_wrk() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$1" --latency "$2" >"$3" 2>&1 &
    WRK_PID=$!
    if ! wait "$WRK_PID"; then
        WRK_PID=""
        cat "$3" >&2
        die "wrk failed against $2"
    fi
    WRK_PID=""
}

for t in "${TARGETS[@]}"; do
    log "warm-up $t ($WARMUP)"
    run_wrk "$WARMUP" "${URL[$t]}" "$TMP/warmup-$t.txt"
    mkdir -p "$TMP/results/$t"
done

n=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for ((i = 0; i < n; i++)); do
        t=${TARGETS[$(((round - 1 + i) % n))]}   # rotate the order every round
        sleep 1
        log "round $round/$ROUNDS: $t (${URL[$t]}, $DURATION)"
        f="$TMP/results/$t/$round.txt"
        run_wrk "$DURATION" "${URL[$t]}" "$f"
        log "  $t round $round: $(py summary "$f")"
    done
done

kill -0 "$REG_PID" 2>/dev/null || { tail_log "$TMP/registration.log"; die "registration died during the benchmark"; }
kill -0 "$EDGE_PID" 2>/dev/null || { tail_log "$TMP/edge.log"; die "edge died during the benchmark"; }
kill -0 "$NGX_PID" 2>/dev/null || { tail_log "$NGX_DIR/error.log"; die "nginx died during the benchmark"; }

# ---------------------------------------------------------------------------------------------------------
# 6. report
# ---------------------------------------------------------------------------------------------------------
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1 || true)
OUT="$OUT" \
BENCH_URL_direct="${URL[direct]}" BENCH_URL_edge="${URL[edge]}" BENCH_URL_nginx="${URL[nginx]}" \
BENCH_ROUTE="$ROUTE" BENCH_DURATION="$DURATION" BENCH_CONNECTIONS="$CONNECTIONS" BENCH_THREADS="$THREADS" BENCH_ROUNDS="$ROUNDS" \
BENCH_WARMUP="$WARMUP" BENCH_NGINX_WORKERS="$NGINX_WORKERS" \
BENCH_NPROC="$(nproc)" BENCH_KERNEL="$(uname -sr)" BENCH_CPU="${CPU:-unknown}" \
BENCH_WRK_VERSION="$(wrk -v 2>&1 | head -n 1 | sed 's/ \[.*//' || true)" \
BENCH_NGINX_VERSION="$("$NGINX" -v 2>&1 | head -n 1 || true)" \
    py report "$TMP/results" "${TARGETS[@]}"
