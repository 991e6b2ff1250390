# Shared by the live ops tests: free ports, waiting, stopping by PID.
# Every process a test starts is recorded in PIDS and stopped on exit.

PIDS=""
TMP=$(mktemp -d "${TMPDIR:-/tmp}/socketd-ops.XXXXXX")

cleanup() {
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.3
	for p in $PIDS; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT INT TERM

die() {
	echo "FAIL: $*" >&2
	for f in "$TMP"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f (tail) ----" >&2
		tail -n 25 "$f" >&2
	done
	exit 1
}

# "absent binary": skip with the reason, except in CI, which installs it.
need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		if [ "${CI:-}" = true ]; then
			die "$1 is not installed (CI installs $2: make deps)"
		fi
		echo "SKIP: $1 is not installed (apt-get install $2)"
		exit 77
	fi
}

# n distinct loopback ports that were free a moment ago.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

now_ms() {
	date +%s%3N
}

# wait_until SECONDS command...: poll every 0.1 s.
wait_until() {
	_limit=$1
	shift
	_end=$(($(now_ms) + _limit * 1000))
	while ! "$@"; do
		[ "$(now_ms)" -lt "$_end" ] || return 1
		sleep 0.1
	done
}

is_running() {
	kill -0 "$1" 2>/dev/null
}

# A JSON member of the one-line object in file $2.
json() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[2]))[sys.argv[1]])' "$1" "$2"
}
