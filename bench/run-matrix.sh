#!/bin/sh
# Run socketd's fixed benchmark matrix and print a Markdown table.
#
#	bench/run-matrix.sh               # 5 s per cell, about 1.5 minutes
#	DURATION=1 WARMUP=0.5 bench/run-matrix.sh   # quick
#
# A fresh socketd is started on a free loopback port with a generated
# configuration (max_connections 20000, timeouts.idle 0, log level
# warning) and stopped by PID at the end, also on failure or Ctrl-C.  Each
# cell is one "socketd-cli bench --json" run; ping and echo of 64 bytes at
#	50 connections, pipeline 1
#	50 connections, pipeline 16
#	1000 connections, pipeline 1
#	10000 connections, pipeline 1
# The table goes to stdout, progress and errors to stderr.  The exit
# status is 0 when every cell ran without errors, 1 otherwise.
#
# Environment (defaults in brackets):
#	SOCKETD_BIN  the daemon [build/daemon/socketd]
#	SOCKETD_CLI  the client [client/socketd-cli in SOCKETD_BIN's build]
#	WORKERS      socketd worker threads [2]
#	THREADS      bench client threads (bench -t) [1]
#	DURATION     measured seconds per cell (bench -d) [5]
#	WARMUP       unmeasured seconds before each cell (--warmup) [1]
#	PAUSE        seconds between cells [1]
#	PORT         loopback port [a free one between 20000 and 32767]
#
# Only POSIX sh, sed and awk are needed (no python).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SOCKETD_BIN=${SOCKETD_BIN:-$ROOT/build/daemon/socketd}
SOCKETD_CLI=${SOCKETD_CLI:-$(dirname "$SOCKETD_BIN")/../client/socketd-cli}
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-1}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
PAUSE=${PAUSE:-1}
PORT=${PORT:-}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

positive() {
	case $2 in
	'' | *[!0-9]* | 0) die "$1 must be a positive integer, not '$2'" ;;
	esac
}

seconds() {
	case $2 in
	'' | . | *[!0-9.]* | *.*.*) die "$1 must be seconds, not '$2'" ;;
	esac
}

positive WORKERS "$WORKERS"
positive THREADS "$THREADS"
seconds DURATION "$DURATION"
seconds WARMUP "$WARMUP"
seconds PAUSE "$PAUSE"
[ -x "$SOCKETD_BIN" ] || die "no socketd at $SOCKETD_BIN (set SOCKETD_BIN)"
[ -x "$SOCKETD_CLI" ] || die "no socketd-cli at $SOCKETD_CLI (set SOCKETD_CLI)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/socketd-matrix.XXXXXX")

# Room for 10000 connections on both sides (socketd-cli raises its own).
# shellcheck disable=SC3045 # dash, bash and busybox sh all have -n, -H
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

random_port() {
	_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $((20000 + _r % 12768))
}

# Start socketd; retry on another port if this one was taken.
attempt=0
fixed_port=$PORT
while [ -z "$PID" ]; do
	attempt=$((attempt + 1))
	port=${fixed_port:-$(random_port)}
	cat >"$TMP/socketd.conf" <<EOF
listen = [ "127.0.0.1:$port" ];
workers = $WORKERS;
max_connections = 20000;
timeouts: { idle = 0; };
log: { level = "warning"; };
admin: { listen = [ ]; agent_listen = [ ]; };
EOF
	"$SOCKETD_BIN" -c "$TMP/socketd.conf" 2>"$TMP/socketd.log" &
	PID=$!
	i=0
	up=0
	while [ "$i" -lt 50 ] && running "$PID"; do
		if "$SOCKETD_CLI" -p "$port" -t 1 ping >/dev/null 2>&1; then
			up=1
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	if [ "$up" -eq 0 ]; then
		stop_server
		if [ -n "$fixed_port" ] || [ "$attempt" -ge 5 ]; then
			cat "$TMP/socketd.log" >&2
			die "socketd did not start (last port $port)"
		fi
	fi
done
say "socketd pid $PID on 127.0.0.1:$port, $WORKERS workers;" \
    "bench: $THREADS thread(s), ${DURATION} s per cell after" \
    "${WARMUP} s warmup"

# The number after "key": in bench's one-line JSON.
jnum() {
	sed -n "s/.*\"$1\":\\([0-9][0-9.]*\\).*/\\1/p" "$2"
}

echo "| cell | op | conns | pipeline | rps | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) | errors |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"

status=0
cell=0
for op in ping echo; do
	for shape in 50:1 50:16 1000:1 10000:1; do
		cell=$((cell + 1))
		conns=${shape%:*}
		pipe=${shape#*:}
		size=""
		label=$op
		if [ "$op" = echo ]; then
			size="--size 64"
			label="echo 64 B"
		fi
		say "cell $cell/8: $op, $conns connections, pipeline $pipe"
		rc=0
		# shellcheck disable=SC2086 # $size is empty or two words
		"$SOCKETD_CLI" -p "$port" bench -d "$DURATION" \
		    --warmup "$WARMUP" -c "$conns" -P "$pipe" -t "$THREADS" \
		    --op "$op" $size --json >"$TMP/out" 2>"$TMP/err" || rc=$?
		if [ -z "$(jnum rps "$TMP/out")" ]; then
			cat "$TMP/err" >&2
			echo "| $cell | $label | $conns | $pipe | failed: exit $rc | | | | | |"
			status=1
		else
			if [ -s "$TMP/err" ]; then
				cat "$TMP/err" >&2
			fi
			errs=$(jnum errors "$TMP/out")
			cf=$(jnum connect_failures "$TMP/out")
			lost=$(jnum connections_lost "$TMP/out")
			note=""
			if [ "${cf:-0}" != 0 ] || [ "${lost:-0}" != 0 ]; then
				note=" ($cf connect failures, $lost lost)"
			fi
			if [ "$rc" -ne 0 ]; then
				status=1
			fi
			awk -v cell="$cell" -v op="$label" -v c="$conns" \
			    -v p="$pipe" -v rps="$(jnum rps "$TMP/out")" \
			    -v p50="$(jnum p50 "$TMP/out")" \
			    -v p99="$(jnum p99 "$TMP/out")" \
			    -v p999="$(jnum p99_9 "$TMP/out")" \
			    -v max="$(jnum max "$TMP/out")" \
			    -v e="$errs$note" 'BEGIN {
				printf "| %d | %s | %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %s |\n",
				    cell, op, c, p, rps, p50, p99, p999, max, e
			}'
		fi
		if [ "$cell" -lt 8 ]; then
			sleep "$PAUSE"
		fi
	done
done

stop_server
exit "$status"
