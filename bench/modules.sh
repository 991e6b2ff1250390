#!/bin/sh
# The module path's cost and the blocking pool's arithmetic (issue 8's
# targets), measured with socketd-cli bench against a fresh socketd with
# the example module hello loaded.
#
#	bench/modules.sh                  # about 2 minutes
#	DURATION=2 ROUNDS=1 bench/modules.sh   # quick
#
# 1. hello.upper of 64 bytes against the built-in ECHO of 64 bytes, 50
#    connections at pipeline 16, with workers 1 and then 2: ROUNDS
#    alternating rounds each, the median of each, and their ratio.
# 2. hello.sleep 10 (BLOCKING, handler_threads 8) on 64 connections for
#    DURATION seconds: requests/s against 0.9 x 8 x 100 = 720; meanwhile
#    PING on 4 other connections, whose p99 is compared with the p99 of
#    the same PING load on the idle server just before.
# 3. RSS per idle connection with hello loaded: 10000 connections that
#    never call a module, then the same connections after one hello.upper
#    each (which gives each its module state, struct conn_ext).
# 4. With valgrind installed (CALLGRIND=0 skips it): instructions the
#    daemon executes per request, ECHO against hello.upper, from callgrind
#    totals of a 20000-request and a 60000-request run (the difference
#    cancels start-up and shutdown).  Counts instructions, not time: the
#    same on a busy machine as on an idle one.
# socketd is started on a free loopback port and stopped by PID, also on
# failure or Ctrl-C.  Needs python3 for step 3 (standard library only).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SOCKETD_BIN=${SOCKETD_BIN:-$BUILD/daemon/socketd}
SOCKETD_CLI=${SOCKETD_CLI:-$BUILD/client/socketd-cli}
MODDIR=${MODDIR:-$BUILD/examples}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-10000}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/socketd-modbench.XXXXXX")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck disable=SC3045
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ -x "$SOCKETD_BIN" ] || die "no socketd at $SOCKETD_BIN"
[ -f "$MODDIR/hello.so" ] || die "no hello.so in $MODDIR"

start_server() { # workers [wrapper...]
	_w=$1
	shift
	_try=0
	while [ "$_try" -lt 5 ]; do
		_try=$((_try + 1))
		PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 12768))
		cat >"$TMP/socketd.conf" <<CONF
listen = [ "127.0.0.1:$PORT" ];
workers = $_w;
max_connections = 20000;
timeouts: { idle = 0; };
log: { level = "warning"; };
module_dir = "$MODDIR";
modules = ( { name = "hello"; path = "hello.so"; opcode = 0x80; } );
handler_threads = 8;
CONF
		"$@" "$SOCKETD_BIN" -c "$TMP/socketd.conf" 2>"$TMP/socketd.log" &
		PID=$!
		_i=0
		while [ "$_i" -lt 300 ] && running "$PID"; do
			"$SOCKETD_CLI" -p "$PORT" -t 1 ping >/dev/null 2>&1 && return 0
			sleep 0.1
			_i=$((_i + 1))
		done
		stop_server
	done
	cat "$TMP/socketd.log" >&2
	die "socketd did not start"
}

# One bench run; prints "rps p99_us errors" from its JSON.
bench() {
	"$SOCKETD_CLI" -p "$PORT" bench --json "$@" >"$TMP/b.json" ||
		die "bench $*: $(cat "$TMP/b.json")"
	python3 - "$TMP/b.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
lat = j.get("latency_us", j.get("latency", {}))
p99 = lat.get("p99", lat.get("p99_us", 0)) if isinstance(lat, dict) else 0
print(round(j["requests_per_second"] if "requests_per_second" in j else j["rps"]),
      p99, j.get("errors", 0))
PY
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

PAYLOAD=$(printf '%064d' 0 | tr 0 a)
echo "## hello.upper 64 B vs ECHO 64 B, 50 connections, pipeline 16"
echo
echo "| workers | ECHO req/s (median of $ROUNDS) | hello.upper req/s | ratio |"
echo "|---|---|---|---|"
for w in 1 2; do
	start_server "$w"
	: >"$TMP/echo"
	: >"$TMP/upper"
	r=0
	while [ "$r" -lt "$ROUNDS" ]; do
		r=$((r + 1))
		bench --op echo --payload "$PAYLOAD" -c 50 -P 16 -d "$DURATION" |
			awk '{ print $1 }' >>"$TMP/echo"
		bench --op hello.upper --payload "$PAYLOAD" -c 50 -P 16 \
		    -d "$DURATION" | awk '{ print $1 }' >>"$TMP/upper"
	done
	e=$(median <"$TMP/echo")
	u=$(median <"$TMP/upper")
	echo "| $w | $e | $u | $(awk -v u="$u" -v e="$e" 'BEGIN { printf "%.3f", u / e }') |"
	say "workers $w: echo $(tr '\n' ' ' <"$TMP/echo"); upper $(tr '\n' ' ' <"$TMP/upper")"
	stop_server
done

echo
echo "## hello.sleep 10 on handler_threads 8, 64 connections; PING p99 beside it"
echo
start_server 2
idle=$(bench --op ping -c 4 -P 1 -d "$DURATION")
"$SOCKETD_CLI" -p "$PORT" bench --json --op hello.sleep --payload 10 -c 64 \
    -P 1 -d "$DURATION" --warmup 1 >"$TMP/sleep.json" &
BPID=$!
sleep 1.5
busy=$(bench --op ping -c 4 -P 1 -d "$((DURATION - 1))" --warmup 0)
wait "$BPID" || die "bench hello.sleep failed"
sleep_rps=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(round(j['requests_per_second'] if 'requests_per_second' in j else j['rps']))" "$TMP/sleep.json")
echo "| measure | value |"
echo "|---|---|"
echo "| hello.sleep 10 req/s (target >= 720) | $sleep_rps |"
echo "| PING p99 idle server (us) | $(echo "$idle" | awk '{ print $2 }') |"
echo "| PING p99 beside hello.sleep (us) | $(echo "$busy" | awk '{ print $2 }') |"
echo "| ratio (target <= 2) | $(echo "$idle $busy" | awk '{ printf "%.2f", $5 / ($2 > 0 ? $2 : 1) }') |"
stop_server

echo
echo "## RSS per idle connection with hello loaded ($CONNS connections)"
echo
start_server 2
python3 - "$PORT" "$PID" "$CONNS" <<'PY'
import socket, struct, sys, time
port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
def settle(k):
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(struct.pack(">IBBHI", 8, 1, 3, 0, 1))
        h = s.recv(12); m = struct.unpack(">I", h[:4])[0] - 8
        body = b""
        while len(body) < m: body += s.recv(m - len(body))
        s.close()
        cur = int([l for l in body.decode().split("\n") if l.startswith("connections_current ")][0].split()[1])
        if cur >= k: return
        time.sleep(0.05)
base = rss()
socks = []
for i in range(n):
    socks.append(socket.create_connection(("127.0.0.1", port)))
settle(n)
time.sleep(0.5)
idle = rss()
req = struct.pack(">IBBHI", 8 + 1, 1, 0x80, 0, 7) + b"a"
for s in socks:
    s.sendall(req)
for s in socks:
    got = b""
    while len(got) < 13: got += s.recv(13 - len(got))
time.sleep(0.5)
used = rss()
print("| connections | RSS per connection |")
print("|---|---|")
print(f"| {n} idle, no module call | {(idle - base) / n:.0f} B |")
print(f"| {n} after one hello.upper each | {(used - base) / n:.0f} B |")
for s in socks: s.close()
PY
stop_server

[ "${CALLGRIND:-1}" = 1 ] && command -v valgrind >/dev/null 2>&1 || exit 0
echo
echo "## Instructions per request in socketd (callgrind, 50 connections, pipeline 16, workers 1)"
echo
ir() { # op, requests: the daemon's total instructions
	start_server 1 valgrind --tool=callgrind \
	    --callgrind-out-file="$TMP/cg.out"
	"$SOCKETD_CLI" -p "$PORT" -t 30 bench --op "$1" --payload "$PAYLOAD" \
	    -c 50 -P 16 -n "$2" >/dev/null || die "bench under callgrind"
	stop_server
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$TMP/socketd.log" | tail -n 1
}
echo "| op | instructions per request |"
echo "|---|---|"
for op in echo hello.upper; do
	a=$(ir "$op" 20000)
	b=$(ir "$op" 60000)
	echo "| $op | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", (b - a) / 40000 }') |"
done
