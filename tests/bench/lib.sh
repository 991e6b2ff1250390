# shellcheck shell=sh disable=SC2034 # RC, FAKE_PORT: read by the scripts
# Shared by the bench test scripts (POSIX sh, sourced after set -eu).
#
# Every process started through start_bg is remembered by PID and stopped
# (SIGTERM, then SIGKILL after 5 s) when the script exits, whether it
# passed or failed; the scratch directory $TMP goes too.  Every wait is
# bounded.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sdbench-test.XXXXXX")
PIDS=""
FAILED=0

# 1 if the process runs (a zombie does not count), else 0.
is_running() {
	_st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	_st=${_st##*) }
	_st=${_st%% *}
	[ "$_st" != Z ]
}

untrack() {
	PIDS=$(printf ' %s ' "$PIDS" | sed "s/ $1 / /; s/^ *//; s/ *\$//")
}

# Stop a process by PID: SIGTERM, up to 5 s, then SIGKILL; reap it.
stop_pid() {
	_i=0
	kill -TERM "$1" 2>/dev/null || true
	while is_running "$1"; do
		if [ "$_i" -ge 50 ]; then
			echo "pid $1 ignored SIGTERM for 5 s: SIGKILL" >&2
			kill -KILL "$1" 2>/dev/null || true
			break
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	wait "$1" 2>/dev/null || true
	untrack "$1"
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	for _p in $PIDS; do
		stop_pid "$_p"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail() {
	echo "FAIL: $*" >&2
	FAILED=$((FAILED + 1))
}

pass() {
	echo "ok: $*"
}

# A bound on every client run, when coreutils' timeout(1) is there.
if command -v timeout >/dev/null 2>&1; then
	BOUND="timeout -k 5 90"
else
	BOUND=""
fi

# run OUT ERR CMD...: run bounded, stdout to OUT, stderr to ERR; sets RC.
run() {
	_out=$1
	_err=$2
	shift 2
	RC=0
	$BOUND "$@" >"$_out" 2>"$_err" || RC=$?
}

# The number after "key": in a one-line JSON object (empty if absent).
json_num() {
	sed -n "s/.*\"$1\":\\([0-9][0-9.]*\\).*/\\1/p" "$2"
}

# Start the fake server: start_fake MODE [N]; sets FAKE_PID, FAKE_PORT.
start_fake() {
	: >"$TMP/fake.port"
	"$FAKE" "$@" >"$TMP/fake.port" 2>"$TMP/fake.err" &
	FAKE_PID=$!
	PIDS="$PIDS $FAKE_PID"
	_i=0
	until grep -q '^[0-9][0-9]*$' "$TMP/fake.port"; do
		if [ "$_i" -ge 50 ] || ! is_running "$FAKE_PID"; then
			cat "$TMP/fake.err" >&2
			echo "FAIL: fake server $* did not start" >&2
			exit 1
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	FAKE_PORT=$(head -n 1 "$TMP/fake.port")
}

# A loopback port that was free a moment ago.
free_port() {
	"$FAKE" --free-port
}

finish() {
	if [ "$FAILED" -gt 0 ]; then
		echo "$FAILED check(s) failed" >&2
		exit 1
	fi
	echo "all checks passed"
}
