# bench/lib.sh: what the benchmark scripts share (sourced, POSIX sh).
# shellcheck shell=sh
# The caller sets TMP (a directory removed at exit) and PID (the socketd
# it started, stopped at exit by PID: SIGTERM, then SIGKILL after 15 s).
PID=""
say() { echo "${0##*/}: $*" >&2; }
die() {
	say "$*"
	exit 1
}
# A zombie counts as gone (kill -0 would still succeed on it).
running() {
	_st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	_st=${_st##*) }
	_st=${_st%% *}
	[ "$_st" != Z ]
}
# SIGTERM, up to 15 s for the graceful stop, then SIGKILL.
stop_server() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null || true
	_i=0
	while running "$PID"; do
		if [ "$_i" -ge 150 ]; then
			say "socketd (pid $PID) still running after 15 s: SIGKILL"
			kill -KILL "$PID" 2>/dev/null || true
			break
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	wait "$PID" 2>/dev/null || true
	PID=""
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	stop_server
	[ -z "${TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
