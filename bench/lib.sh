# bench/lib.sh: what the benchmark scripts share (sourced, POSIX sh).
# The caller sets TMP (a directory removed at exit) and PID (the socketd
# it started, stopped at exit by PID: SIGTERM, then SIGKILL after 15 s).
PID=""
say() { echo "${0##*/}: $*" >&2; }
die() {
	say "$*"
	exit 1
}
running() { kill -0 "$1" 2>/dev/null; }
stop_server() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null || true
	_i=0
	while running "$PID" && [ "$_i" -lt 150 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	kill -KILL "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
}
cleanup() {
	stop_server
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
