#!/bin/sh
# Three socketd instances behind one HAProxy (packaging/haproxy/socketd.cfg
# with loopback ports), while socketd-cli bench --reconnect keeps 50
# connections busy through HAProxy:
#   1. rolling restart: each instance in turn gets SIGTERM (timeouts.drain
#      2 s) and is started again once it has exited; zero errors, zero
#      lost requests;
#   2. one instance killed with SIGKILL: HAProxy marks it DOWN within a
#      few seconds (show stat), bench loses at most the requests in flight
#      on that instance's connections, and a run right after loses none.
# usage: haproxy.sh SOCKETD SOCKETD_CLI SOURCE_DIR
set -u
SOCKETD=$1
CLI=$2
SRC=$3
. "$SRC/tests/ops/lib.sh"
need haproxy haproxy
need python3 python3

PIPELINE=4
CONNS=50
set -- $(free_ports 10)
FRONT=$1
P1=$2 A1=$3 P2=$4 A2=$5 P3=$6 A3=$7 M1=$8 M2=$9
shift 9
M3=$1
SOCK="$TMP/haproxy.sock"

# The shipped recipe, with this test's ports and stats socket.
sed -e "s|bind 127.0.0.1:7400|bind 127.0.0.1:$FRONT|" \
    -e "s|/run/haproxy/socketd.sock|$SOCK|" \
    -e "s|127.0.0.1:7411 check agent-port 9412|127.0.0.1:$P1 check agent-port $A1|" \
    -e "s|127.0.0.1:7421 check agent-port 9422|127.0.0.1:$P2 check agent-port $A2|" \
    -e "s|127.0.0.1:7431 check agent-port 9432|127.0.0.1:$P3 check agent-port $A3|" \
    "$SRC/packaging/haproxy/socketd.cfg" >"$TMP/haproxy.cfg"
grep -q "127.0.0.1:$P3 check agent-port $A3" "$TMP/haproxy.cfg" ||
	die "could not put the test ports into the recipe"
haproxy -dW -c -f "$TMP/haproxy.cfg" >"$TMP/check.out" 2>&1 ||
	die "haproxy -dW -c: $(cat "$TMP/check.out")"

# start_socketd N PORT AGENT ADMIN: instance N in the background.
start_socketd() {
	cat >"$TMP/s$1.conf" <<CONF
listen = [ "127.0.0.1:$2" ];
workers = 1;
admin: { listen = [ "127.0.0.1:$4" ]; agent_listen = [ "127.0.0.1:$3" ]; };
timeouts: { drain = 2; shutdown = 6; };
log: { level = "info"; };
CONF
	"$SOCKETD" -c "$TMP/s$1.conf" >>"$TMP/s$1.log" 2>&1 &
	eval "PID$1=$!"
	PIDS="$PIDS $!"
	wait_until 5 grep -q "ready:" "$TMP/s$1.log" ||
		die "socketd s$1 did not start"
}

# show stat, by column name: "server status scur".
stat() {
	python3 - "$SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
lines = data.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
col = {n: i for i, n in enumerate(head)}
for l in lines[1:]:
    f = l.split(",")
    if len(f) > 1 and f[0] == "socketd_pool" and f[1] not in ("BACKEND",):
        print(f[1], f[col["status"]], f[col["scur"]], f[col["stot"]])
PY
}

# up_ready sN: HAProxy sees it UP (not DRAIN, not DOWN).
up_ready() {
	stat 2>/dev/null | grep -q "^$1 UP "
}
# HAProxy logs the agent's "drain" as it happens (show stat would need
# polling fast enough on a CPU that bench keeps busy).
drained() {
	grep -q "Server socketd_pool/$1 enters drain state" "$TMP/haproxy.log"
}
is_down() {
	stat 2>/dev/null | grep -q "^$1 DOWN"
}
all_up() {
	up_ready s1 && up_ready s2 && up_ready s3
}

start_socketd 1 "$P1" "$A1" "$M1"
start_socketd 2 "$P2" "$A2" "$M2"
start_socketd 3 "$P3" "$A3" "$M3"
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
HPID=$!
PIDS="$PIDS $HPID"
wait_until 10 all_up || die "HAProxy did not see all three UP: $(stat)"
echo "haproxy $HPID: s1 s2 s3 UP"

# 1. Rolling restart under load.
"$CLI" -t 5 -p "$FRONT" bench --reconnect -c $CONNS -P $PIPELINE -d 24 \
    --warmup 0 --json >"$TMP/bench1.json" 2>"$TMP/bench1.log" &
BPID=$!
PIDS="$PIDS $BPID"
sleep 2
for n in 1 2 3; do
	eval "pid=\$PID$n"
	eval "port=\$P$n agent=\$A$n admin=\$M$n"
	t0=$(now_ms)
	kill -TERM "$pid"
	# HAProxy hears "drain" from the agent within agent-inter.
	wait_until 4 drained "s$n" ||
		die "HAProxy did not put s$n in DRAIN: $(stat)"
	td=$(now_ms)
	wait_until 12 sh -c "! kill -0 $pid 2>/dev/null" ||
		die "s$n did not exit within 12 s of SIGTERM"
	wait "$pid"
	rc=$?
	[ "$rc" -eq 0 ] || die "s$n exited with status $rc"
	t1=$(now_ms)
	start_socketd "$n" "$port" "$agent" "$admin"
	wait_until 10 up_ready "s$n" || die "s$n did not come back UP: $(stat)"
	t2=$(now_ms)
	echo "s$n: SIGTERM -> DRAIN in HAProxy $((td - t0)) ms -> exit $((t1 - t0)) ms; restart -> UP $((t2 - t1)) ms"
done
wait "$BPID"
rc=$?
req=$(json requests "$TMP/bench1.json")
err=$(json errors "$TMP/bench1.json")
lost=$(json lost_requests "$TMP/bench1.json")
ga=$(json goaways "$TMP/bench1.json")
rec=$(json reconnects "$TMP/bench1.json")
echo "rolling restart: $req requests, $err errors, $lost lost, $ga GOAWAY, $rec reconnects (bench exit $rc)"
[ "$rc" -eq 0 ] || die "bench exited $rc: $(cat "$TMP/bench1.log")"
[ "$err" -eq 0 ] && [ "$lost" -eq 0 ] || die "requests were lost"
[ "$req" -gt 10000 ] || die "too few requests to mean anything: $req"
# Each drained instance sent GOAWAY to the connections it held.
[ "$ga" -ge 3 ] || die "only $ga GOAWAY seen: the drain was not exercised"

# 2. SIGKILL one instance under load.
"$CLI" -t 5 -p "$FRONT" bench --reconnect -c $CONNS -P $PIPELINE -d 8 \
    --warmup 0 --json >"$TMP/bench2.json" 2>"$TMP/bench2.log" &
BPID=$!
PIDS="$PIDS $BPID"
sleep 2
# "s2 UP scur stot" (status is one word while UP)
set -- $(stat | grep "^s2 ")
scur=$3 stot0=$4
t0=$(now_ms)
kill -KILL "$PID2"
wait_until 10 is_down s2 || die "HAProxy did not mark s2 DOWN: $(stat)"
t1=$(now_ms)
wait "$BPID"
# Sessions HAProxy gave s2 after the kill, before it was DOWN: clients
# reconnecting at once may be sent there (it holds the fewest), and what
# they had sent is lost with them.  They count as s2's connections.
stot1=$(stat | awk '$1 == "s2" { print $NF }')
late=$((stot1 - stot0))
rc=$?
err=$(json errors "$TMP/bench2.json")
lost=$(json lost_requests "$TMP/bench2.json")
req=$(json requests "$TMP/bench2.json")
bound=$(((scur + late) * PIPELINE))
echo "SIGKILL s2 ($scur connections, $late more sent to it before DOWN): DOWN after $((t1 - t0)) ms; bench $req requests, $err errors, $lost lost (bound $bound)"
[ $((t1 - t0)) -le 5000 ] || die "DOWN took $((t1 - t0)) ms"
[ "$err" -eq "$lost" ] || die "errors other than lost requests: $(cat "$TMP/bench2.log")"
[ "$lost" -le "$bound" ] || die "lost $lost > $bound in flight on s2"
# Every later request succeeds.
"$CLI" -t 5 -p "$FRONT" bench -c $CONNS -P $PIPELINE -d 2 --warmup 0 \
    --json >"$TMP/bench3.json" 2>"$TMP/bench3.log" ||
	die "a run after the kill failed: $(cat "$TMP/bench3.log")"
echo "after: $(json requests "$TMP/bench3.json") requests, $(json errors "$TMP/bench3.json") errors"
[ "$(json errors "$TMP/bench3.json")" -eq 0 ] || die "errors after the kill"
echo "PASS"
