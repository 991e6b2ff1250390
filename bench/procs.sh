#!/bin/sh
# The cost of handler processes (issue 12's targets), measured with
# socketd-cli bench against a fresh socketd:
#
#	bench/procs.sh                        # about 1 minute
#	DURATION=2 ROUNDS=1 bench/procs.sh    # quick
#
# 1. The hop: bench/echoproc (a C handler process echoing; INSTANCES_C
#    copies, default 1, with max_inflight MAXINF_C, default 1024: a cheap
#    handler wants big batches, one read and one write per batch) against
#    the built-in ECHO, both 64 bytes, 50 connections at pipeline 16,
#    ROUNDS alternating rounds, the median of each and their ratio
#    (target 0.5).
# 2. examples/processes/upper.py, 2 instances, upper of 64 bytes at the
#    same load: requests/s (target 50,000).
# 3. Crashes: 4 instances of echoproc under 20 connections at pipeline 16
#    for CRASH_S seconds while one instance, chosen at random, is killed
#    (SIGKILL) every second.  Every answer is checked; the only failures
#    allowed are the requests the killed child held (at most max_inflight,
#    32, per kill), answered INTERNAL.
# socketd is started on a free loopback port and stopped by PID, also on
# failure or Ctrl-C.  WORKERS (default 2) sets its workers.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SOCKETD_BIN=${SOCKETD_BIN:-$BUILD/daemon/socketd}
SOCKETD_CLI=${SOCKETD_CLI:-$BUILD/client/socketd-cli}
ECHOPROC=${ECHOPROC:-$BUILD/bench/echoproc}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-2}
INSTANCES_C=${INSTANCES_C:-1}
MAXINF_C=${MAXINF_C:-1024}
CRASH_S=${CRASH_S:-10}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/socketd-procbench.XXXXXX")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

[ -x "$SOCKETD_BIN" ] && [ -x "$SOCKETD_CLI" ] && [ -x "$ECHOPROC" ] ||
	die "build first (cmake --build build): need $SOCKETD_BIN, $SOCKETD_CLI, $ECHOPROC"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start INSTANCES MAX_INFLIGHT (of the C child)
start_server() {
	PORT=$(free_port)
	cat >"$TMP/socketd.conf" <<EOF
listen = [ "127.0.0.1:$PORT" ];
admin: { listen = []; agent_listen = []; };
workers = $WORKERS;
max_connections = 1000;
log: { level = "warning"; };
processes = (
  { name = "c"; command = [ "$ECHOPROC" ]; opcode = 0xa0;
    instances = $1; max_inflight = $2; restart_delay = 0.1; },
  { name = "py"; command = [ "/usr/bin/python3",
      "$ROOT/examples/processes/upper.py" ]; opcode = 0xb0; instances = 2; }
);
EOF
	"$SOCKETD_BIN" -c "$TMP/socketd.conf" 2>"$TMP/socketd.log" &
	PID=$!
	_i=0
	until "$SOCKETD_CLI" -p "$PORT" ping >/dev/null 2>&1; do
		_i=$((_i + 1))
		[ "$_i" -lt 100 ] || die "socketd did not start: $(cat "$TMP/socketd.log")"
		sleep 0.1
	done
}

PAYLOAD=$(head -c 64 /dev/zero | tr '\0' a)

# bench OP-ARGS...: prints "requests errors rps"
run_bench() {
	# It exits 1 when an answer was an error: the JSON still counts them.
	"$SOCKETD_CLI" -p "$PORT" bench -c "${CONNS:-50}" -P 16 -d "$DURATION" \
	    --json "$@" >"$TMP/b.json" 2>"$TMP/b.err" || [ -s "$TMP/b.json" ] ||
	    die "bench $* failed: $(cat "$TMP/b.err")"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["requests"], d["errors"], d["rps"])' "$TMP/b.json"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

say "load before: $(cut -d' ' -f1-3 /proc/loadavg); workers $WORKERS; $(nproc) CPUs"
start_server "$INSTANCES_C" "$MAXINF_C"
: >"$TMP/echo"
: >"$TMP/proc"
r=0
while [ "$r" -lt "$ROUNDS" ]; do
	set -- $(run_bench --op echo --size 64)
	echo "$3" >>"$TMP/echo"
	say "round $((r + 1)): ECHO 64 B: $3 requests/s ($2 errors)"
	set -- $(run_bench --op c.echo --payload "$PAYLOAD")
	echo "$3" >>"$TMP/proc"
	say "round $((r + 1)): c.echo 64 B ($INSTANCES_C instance(s), max_inflight $MAXINF_C): $3 requests/s ($2 errors)"
	r=$((r + 1))
done
E=$(median <"$TMP/echo")
P=$(median <"$TMP/proc")
echo "hop: built-in ECHO $E/s, C handler process $P/s, ratio $(awk -v a="$P" -v b="$E" 'BEGIN {printf "%.2f", a / b}') (target 0.5)"

set -- $(run_bench --op py.upper --payload "$PAYLOAD")
echo "python: examples/processes/upper.py, 2 instances: $3 requests/s, $2 errors (target 50000)"
stop_server

start_server 4 32
(CONNS=20 DURATION=$CRASH_S run_bench --op c.echo --payload "$PAYLOAD" >"$TMP/crash") &
BENCH=$!
kills=0
sleep 1
while [ "$kills" -lt $((CRASH_S - 1)) ]; do
	victim=$(pgrep -P "$PID" -f echoproc | shuf -n 1 || true)
	[ -n "$victim" ] && kill -KILL "$victim" && kills=$((kills + 1))
	sleep 1
done
wait "$BENCH" || die "bench under crashes failed"
set -- $(cat "$TMP/crash")
restarts=$("$SOCKETD_CLI" -p "$PORT" stats | awk '$1 == "process_c_restarts" {print $2}')
answered=$("$SOCKETD_CLI" -p "$PORT" stats | awk '$1 == "process_c_errors" {print $2}')
say "socketd answered $answered requests of c with an error (warm-up included)"
echo "crashes: $kills children killed (restarts $restarts) under load: $1 requests, $2 failed ($(awk -v e="$2" -v k="$kills" 'BEGIN {printf "%.1f", k ? e / k : 0}') per kill, at most 32 allowed), $3 requests/s"
[ "$2" -le $((kills * 32)) ] || die "more failures than the killed children held"
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
