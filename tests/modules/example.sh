#!/bin/sh
# modules.example: examples/modules/hello builds out of tree from what
# "cmake --install" stages (<socketd/module.h> and socketd-module.pc: the
# socketd-dev layout) through pkg-config alone, as docs/modules.md says,
# and the daemon loads it and serves all three handlers.
#
#	example.sh TOP BUILD SOCKETD SOCKETD-CLI
#
# The source is copied to a scratch directory, so nothing of the tree but
# the staged files can be found.  Every process it starts is stopped by
# PID.
set -eu
TOP=$1
BUILD=$2
SOCKETD=$3
CLI=$4
for tool in pkg-config cc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/socketd-module-example.XXXXXX")
chmod 755 "$TMP"
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
pc=$(find "$STAGE" -name socketd-module.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || die "no socketd-module.pc staged"
export PKG_CONFIG_PATH="${pc%/*}"
export PKG_CONFIG_SYSROOT_DIR="$STAGE"
pkg-config --validate socketd-module || die "pkg-config --validate"
cflags=$(pkg-config --cflags socketd-module) || die "pkg-config --cflags"
case $cflags in
"-I$STAGE"*) ;;
*) die "pkg-config --cflags does not point into the stage: $cflags" ;;
esac
# pkgconf puts the sysroot in front of variables too; pkg-config did not.
inc=$(pkg-config --variable=includedir socketd-module)
case $inc in "$STAGE"/*) ;; *) inc=$STAGE$inc ;; esac
[ -f "$inc/socketd/module.h" ] || die "module.h is not where the .pc says"
echo "ok: pkg-config --cflags socketd-module: $cflags"

mkdir -m 755 "$TMP/mod"
cp "$TOP/examples/modules/hello/hello.c" "$TMP/mod/"
# shellcheck disable=SC2086 # $cflags is a list of words
if ! (cd "$TMP/mod" && cc -shared -fPIC -O2 -Wall -Wextra -Werror $cflags \
    -o hello.so hello.c -lpthread) >"$TMP/cc.log" 2>&1; then
	cat "$TMP/cc.log" >&2
	die "cc -shared -fPIC \$(pkg-config --cflags socketd-module)"
fi
chmod go-w "$TMP/mod/hello.so"
echo "ok: built hello.so out of tree"

attempt=0
up=0
while [ "$attempt" -lt 5 ] && [ "$up" -eq 0 ]; do
	attempt=$((attempt + 1))
	PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
	printf 'listen = [ "127.0.0.1:%s" ];\nadmin: { listen = []; agent_listen = []; };\nworkers = 1;\nmodule_dir = "%s";\nmodules = ( { name = "hello"; path = "hello.so"; opcode = 0x80; } );\n' \
	    "$PORT" "$TMP/mod" >"$TMP/socketd.conf"
	"$SOCKETD" -t -c "$TMP/socketd.conf" || die "socketd -t"
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

out=$("$CLI" -p "$PORT" call hello.upper 'out of tree') ||
	die "call hello.upper"
[ "$out" = "OUT OF TREE" ] || die "hello.upper answered '$out'"
"$CLI" -p "$PORT" call hello.sleep 10 >/dev/null || die "call hello.sleep"
"$CLI" -p "$PORT" call hello.later 10 >/dev/null || die "call hello.later"
rc=0
"$CLI" -p "$PORT" call hello.later nope 2>"$TMP/err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "BAD_REQUEST" "$TMP/err" ||
	die "hello.later nope: exit $rc, $(cat "$TMP/err")"
echo "ok: hello.upper, hello.sleep and hello.later answer; BAD_REQUEST exits 1"
echo "all checks passed"
