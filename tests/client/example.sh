#!/bin/sh
# client.example: examples/c builds out of tree from what "cmake --install"
# stages (the header, the .so link, the .pc: the libsocketd-dev layout)
# through pkg-config alone, and runs against the daemon.
#
#	example.sh TOP BUILD SOCKETD SOCKETD-CLI [SKIP-REASON]
#
# The staged .pc names the install prefix; PKG_CONFIG_SYSROOT_DIR puts
# the stage in front of its paths, as for a cross build.  The example is
# copied to a scratch directory, so nothing of the source tree but the
# staged files can be found.  Every process it starts is stopped by PID.
set -eu
TOP=$1
BUILD=$2
SOCKETD=$3
CLI=$4
SKIP_REASON=${5:-}
if [ -n "$SKIP_REASON" ]; then
	echo "SKIP: $SKIP_REASON"
	exit 77
fi
for tool in pkg-config make cc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/libsocketd-example.XXXXXX")
PID=""
cleanup() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		i=0
		while kill -0 "$PID" 2>/dev/null && [ "$i" -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
die() {
	echo "FAIL: $*" >&2
	exit 1
}

STAGE=$TMP/stage
DESTDIR=$STAGE cmake --install "$BUILD" >"$TMP/install.log" 2>&1 ||
	{ cat "$TMP/install.log" >&2; die "cmake --install"; }
pc=$(find "$STAGE" -name libsocketd.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || die "no libsocketd.pc staged"
libdir=$(PKG_CONFIG_PATH=${pc%/*} pkg-config --variable=libdir libsocketd)
for f in "$libdir/libsocketd.so" "$libdir/libsocketd.so.1" \
    "$(PKG_CONFIG_PATH=${pc%/*} pkg-config --variable=includedir \
    libsocketd)/socketd/client.h"; do
	[ -e "$STAGE$f" ] || die "$f is not staged"
done
echo "ok: staged $(cd "$STAGE" && find . -name 'libsocketd*' -o \
    -name client.h | sort | tr '\n' ' ')"

# In front of the system's .pc files (libssl's, which it requires).
export PKG_CONFIG_PATH="${pc%/*}"
export PKG_CONFIG_SYSROOT_DIR="$STAGE"
pkg-config --validate libsocketd || die "pkg-config --validate libsocketd"
flags=$(pkg-config --cflags --libs libsocketd) ||
	die "pkg-config --cflags --libs libsocketd"
case $flags in
*"-I$STAGE"*"-L$STAGE"*) ;;
*) die "pkg-config flags do not point into the stage: $flags" ;;
esac
echo "ok: pkg-config --cflags --libs libsocketd: $flags"

cp -R "$TOP/examples/c" "$TMP/example"
if ! make -C "$TMP/example" CFLAGS="-O2 -Wall -Wextra -Werror" \
    >"$TMP/make.log" 2>&1; then
	cat "$TMP/make.log" >&2
	die "make in a copy of examples/c"
fi
echo "ok: built out of tree: $(grep -E '^(cc|gcc)' "$TMP/make.log" || true)"

# The daemon on a free port (retried if the port is taken meanwhile).
attempt=0
up=0
while [ "$attempt" -lt 5 ] && [ "$up" -eq 0 ]; do
	attempt=$((attempt + 1))
	PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
	# No admin listeners: their default ports may be another daemon's.
	printf 'listen = [ "127.0.0.1:%s" ];\nworkers = 1;\n%s\n' "$PORT" \
	    'admin: { listen = [ ]; agent_listen = [ ]; };' \
	    >"$TMP/socketd.conf"
	"$SOCKETD" -c "$TMP/socketd.conf" 2>"$TMP/socketd.log" &
	PID=$!
	i=0
	while [ "$i" -lt 50 ] && kill -0 "$PID" 2>/dev/null; do
		if "$CLI" -p "$PORT" -t 1 ping >/dev/null 2>&1; then
			up=1
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	if [ "$up" -eq 0 ]; then
		kill -KILL "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
		PID=""
	fi
done
[ "$up" -eq 1 ] || { cat "$TMP/socketd.log" >&2; die "socketd did not start"; }

# The staged library, not the build tree's: no RUNPATH into the build.
if ! LD_LIBRARY_PATH="$STAGE$libdir" ldd "$TMP/example/socketd-hello" |
    grep -q "libsocketd.so.1 => $STAGE$libdir/libsocketd.so.1"; then
	LD_LIBRARY_PATH="$STAGE$libdir" ldd "$TMP/example/socketd-hello" >&2
	die "socketd-hello does not load the staged libsocketd.so.1"
fi
if ! LD_LIBRARY_PATH="$STAGE$libdir" timeout -k 5 30 \
    "$TMP/example/socketd-hello" 127.0.0.1 "$PORT" >"$TMP/out" 2>&1; then
	cat "$TMP/out" >&2
	die "socketd-hello 127.0.0.1 $PORT"
fi
cat "$TMP/out"
grep -q "^socketd $(sed -n 's/^project(socketd VERSION \([0-9.]*\).*/\1/p' \
    "$TOP/CMakeLists.txt"), clock 20" "$TMP/out" ||
	die "socketd-hello printed no version and clock"
grep -q '^echo: hello$' "$TMP/out" || die "socketd-hello: no echo"
grep -q '^hello.upper: ' "$TMP/out" || die "socketd-hello: no hello.upper line"
grep -q '^async: 10 pings answered$' "$TMP/out" ||
	die "socketd-hello: the non-blocking pings were not all answered"
# A server that is not there: a message and status 1, no crash.
rc=0
LD_LIBRARY_PATH="$STAGE$libdir" "$TMP/example/socketd-hello" 127.0.0.1 1 \
    >"$TMP/out" 2>&1 || rc=$?
if [ "$rc" -ne 1 ] || ! grep -q 'connect: connect to 127.0.0.1 port 1' \
    "$TMP/out"; then
	cat "$TMP/out" >&2
	die "socketd-hello against a closed port: exit $rc"
fi
echo "ok: $(cat "$TMP/out")"
echo "all checks passed"
