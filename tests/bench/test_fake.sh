#!/bin/sh
# socketd-cli bench against bench_fake_server: with right answers there
# are no errors and the exit status is 0; a wrong request_id, a wrong
# status or a corrupted echo byte on every 100th answer makes exactly 20
# errors out of 2000 requests, exit status 1, and a message naming the
# fault on stderr.  Also: answers of 1 MiB, which arrive in many reads
# while other requests stay in flight, are not mistaken for a stall.
#
#	test_fake.sh SOCKETD-CLI BENCH_FAKE_SERVER
set -eu
CLI=$1
FAKE=$2 # used by lib.sh
# shellcheck source=tests/bench/lib.sh
. "$(dirname "$0")/lib.sh"

# check MODE WANT_RC WANT_ERRORS WANT_TEXT BENCH-ARGS...
check() {
	_mode=$1
	_rc=$2
	_errors=$3
	_text=$4
	shift 4
	start_fake "$_mode" 100
	run "$TMP/out" "$TMP/err" "$CLI" -p "$FAKE_PORT" bench "$@"
	stop_pid "$FAKE_PID"
	_what="$_mode: bench $*"
	_e=$(json_num errors "$TMP/out")
	_n=$(json_num requests "$TMP/out")
	if [ "$RC" -ne "$_rc" ]; then
		fail "$_what: exit status $RC, expected $_rc"
	elif [ "$_e" != "$_errors" ]; then
		fail "$_what: errors '$_e', expected $_errors"
	elif [ "$_n" != "$REQS" ]; then
		fail "$_what: requests '$_n', expected $REQS"
	elif [ -n "$_text" ] && ! grep -q "$_text" "$TMP/err"; then
		fail "$_what: no '$_text' on stderr"
	elif [ "$(json_num connect_failures "$TMP/out")" != 0 ]; then
		fail "$_what: connect failures"
	else
		pass "$_what: exit $RC, $_e errors"
		return 0
	fi
	echo "--- stdout:" >&2
	cat "$TMP/out" >&2
	echo "--- stderr:" >&2
	cat "$TMP/err" >&2
}

REQS=2000
ARGS="-n $REQS -c 4 -P 8 --json"
# shellcheck disable=SC2086 # ARGS is split on purpose
check ok 0 0 "" $ARGS
# shellcheck disable=SC2086
check ok 0 0 "" $ARGS --op echo --size 64
# shellcheck disable=SC2086
check badid 1 20 "wrong request_id" $ARGS
# shellcheck disable=SC2086
check badstatus 1 20 "error status" $ARGS
# shellcheck disable=SC2086
check badecho 1 20 "wrong payload" $ARGS --op echo --size 64
# Several threads: the same counts.
# shellcheck disable=SC2086
check badid 1 20 "wrong request_id" $ARGS -t 2
# The largest echo: partial reads with requests still in flight.
REQS=200
check ok 0 0 "" -n $REQS -c 1 -P 2 --op echo --size 1048568 --json
finish
