#!/bin/sh
# socketd-cli bench against the real socketd on a free loopback port:
# 20000 echoes of 64 bytes over 10 connections, pipeline 4, without an
# error; then a short run by duration with two threads.
#
#	test_daemon.sh SOCKETD-CLI BENCH_FAKE_SERVER SOCKETD
set -eu
CLI=$1
FAKE=$2 # used by lib.sh
SOCKETD=$3
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

# Start socketd on a free port; retry if someone took the port meanwhile.
attempt=0
while :; do
	attempt=$((attempt + 1))
	PORT=$(free_port)
	cat >"$TMP/socketd.conf" <<CONF
listen = [ "127.0.0.1:$PORT" ];
workers = 2;
timeouts: { idle = 0; shutdown = 5; };
log: { level = "warning"; };
admin: { listen = [ ]; agent_listen = [ ]; };
CONF
	"$SOCKETD" -c "$TMP/socketd.conf" 2>"$TMP/socketd.log" &
	PID=$!
	PIDS="$PIDS $PID"
	i=0
	up=0
	while [ "$i" -lt 50 ] && is_running "$PID"; do
		if "$CLI" -p "$PORT" -t 1 ping >/dev/null 2>&1; then
			up=1
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	[ "$up" -eq 1 ] && break
	stop_pid "$PID"
	if [ "$attempt" -ge 3 ]; then
		cat "$TMP/socketd.log" >&2
		echo "FAIL: socketd did not start" >&2
		exit 1
	fi
done
pass "socketd pid $PID on port $PORT"

run "$TMP/out" "$TMP/err" "$CLI" -p "$PORT" bench -n 20000 -c 10 -P 4 \
    --op echo --size 64 --json
n=$(json_num requests "$TMP/out")
if [ "$RC" -ne 0 ] || [ "$(json_num errors "$TMP/out")" != 0 ] ||
    [ "${n:-0}" -lt 20000 ] ||
    [ "$(json_num connect_failures "$TMP/out")" != 0 ]; then
	fail "bench -n 20000 echo: exit $RC"
	cat "$TMP/out" "$TMP/err" >&2
else
	pass "bench -n 20000 -c 10 -P 4 --op echo --size 64: $(cat "$TMP/out")"
fi

run "$TMP/out" "$TMP/err" "$CLI" -p "$PORT" bench -d 1 --warmup 0.3 \
    -c 20 -P 2 -t 2 --json
n=$(json_num requests "$TMP/out")
if [ "$RC" -ne 0 ] || [ "$(json_num errors "$TMP/out")" != 0 ] ||
    [ "${n:-0}" -le 0 ]; then
	fail "bench -d 1 -t 2: exit $RC"
	cat "$TMP/out" "$TMP/err" >&2
else
	pass "bench -d 1 -c 20 -P 2 -t 2: $n requests"
fi

stop_pid "$PID"
finish
