#!/bin/sh
# socketd-cli bench: strict option checking (exit 2), --help, no server
# (exit 3), the text report, a run by duration with threads, and a server
# that goes away in the middle of a run (exit 3).
#
#	test_cli.sh SOCKETD-CLI BENCH_FAKE_SERVER
set -eu
CLI=$1
FAKE=$2 # used by lib.sh
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

# Usage errors: exit 2 and a message, before any connection is tried.
for args in "-c 0" "-c abc" "-c -1" "-c 1e3" "-c 12x" "-c 1000001" \
    "-n 0" "-n 1.5" "-n 5 -d 5" "-d 0" "-d -1" "-d 1.2.3" "-d ." \
    "-d inf" "-d 0x10" "-d 1e2" "-d 86401" "-P 0" "-P 4097" "-t 0" \
    "-t 257" "-t 1.5" "--op Foo!" "--op 0x1g" "--op ping --size 10" "--op ping --payload x" "--size -1" \
    "--size 1048569" "--warmup -1" "--warmup 3601" "-p 0" "-p 65536" \
    "-H ''" "-c" "--op" "--bogus" "-x" "stray" "-c 99999999999999999999"
do
	# shellcheck disable=SC2086 # split on purpose; eval for the ''
	eval "run \"\$TMP/out\" \"\$TMP/err\" \"\$CLI\" -p 1 bench $args"
	if [ "$RC" -ne 2 ] || [ ! -s "$TMP/err" ] || [ -s "$TMP/out" ]; then
		fail "bench $args: exit $RC, expected 2 with a message"
		cat "$TMP/err" >&2
	else
		pass "bench $args: exit 2: $(head -n 1 "$TMP/err")"
	fi
done

run "$TMP/out" "$TMP/err" "$CLI" bench --help
if [ "$RC" -ne 0 ] || ! grep -q -- "--threads" "$TMP/out"; then
	fail "bench --help: exit $RC"
else
	pass "bench --help"
fi

# Nobody listening: exit 3 and a clear message.
port=$(free_port)
run "$TMP/out" "$TMP/err" "$CLI" -p "$port" -t 2 bench -n 10
if [ "$RC" -ne 3 ] || ! grep -q "no connection" "$TMP/err"; then
	fail "bench against a closed port: exit $RC, expected 3"
	cat "$TMP/err" >&2
else
	pass "closed port: exit 3: $(head -n 1 "$TMP/err")"
fi

# The text report.
start_fake ok
run "$TMP/out" "$TMP/err" "$CLI" -p "$FAKE_PORT" bench -n 3000 -c 3 -P 2
if [ "$RC" -ne 0 ] || ! grep -q "^  requests     3000$" "$TMP/out" ||
    ! grep -q "^  errors       0$" "$TMP/out" ||
    ! grep -q "^latency (us): p50 .* p99.9 .* max" "$TMP/out" ||
    ! grep -q "^latency distribution" "$TMP/out" ||
    ! grep -q "100.00% [#.]" "$TMP/out"; then
	fail "text report: exit $RC"
	cat "$TMP/out" "$TMP/err" >&2
else
	pass "text report"
fi
# Off a terminal there is no progress line.
if [ -s "$TMP/err" ]; then
	fail "stderr is not empty off a terminal"
	cat "$TMP/err" >&2
fi

# By duration, more threads than connections (at most one per connection).
run "$TMP/out" "$TMP/err" "$CLI" -p "$FAKE_PORT" bench -d 1 --warmup 0.2 \
    -c 3 -t 8 -P 4 --op echo --size 100 --json
n=$(json_num requests "$TMP/out")
if [ "$RC" -ne 0 ] || [ "$(json_num errors "$TMP/out")" != 0 ] ||
    [ "${n:-0}" -le 0 ] || [ "$(json_num threads "$TMP/out")" != 3 ] ||
    [ "$(json_num duration_s "$TMP/out")" != 1.000 ]; then
	fail "bench -d 1 -t 8: exit $RC"
	cat "$TMP/out" "$TMP/err" >&2
else
	pass "bench -d 1 -c 3 -t 8: $n requests, 3 threads"
fi

# The server goes away in the middle of a run: exit 3.
# shellcheck disable=SC2016 # $1.. are the inner shell's
run "$TMP/out" "$TMP/err" sh -c '
	"$1" -p "$2" bench -d 3 --warmup 0 -c 4 --json & b=$!
	sleep 1
	kill -TERM "$3"
	wait "$b"' sh "$CLI" "$FAKE_PORT" "$FAKE_PID"
stop_pid "$FAKE_PID"
if [ "$RC" -ne 3 ] || ! grep -q "connection lost" "$TMP/err" ||
    [ "$(json_num connections_lost "$TMP/out")" != 4 ]; then
	fail "server killed mid-run: exit $RC, expected 3"
	cat "$TMP/out" "$TMP/err" >&2
else
	pass "server killed mid-run: exit 3: $(head -n 1 "$TMP/err")"
fi
finish
