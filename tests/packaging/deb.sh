#!/bin/bash
# packaging.deb: build the .debs (socketd, libsocketd1, libsocketd-dev),
# lint them, install them, run what they installed, purge them.
#
#	deb.sh TOP WORKDIR [SKIP-REASON]
#
# Opt-in, because it installs a package and creates the socketd system
# user on this machine: it runs when SOCKETD_DEB_TEST=1 or CI=true, as
# root, with dpkg-buildpackage installed, and when no socketd package is
# installed already (it would not touch one); otherwise it is skipped
# (77), as it is when a SKIP-REASON is given.  Steps:
#   1. packaging/build-deb.sh (with nocheck: make check ran the suite;
#      SOCKETD_DEB_CHECK=1 runs it inside the package build too)
#   2. lintian --pedantic --fail-on error,warning, when lintian is there
#   3. apt-get install the three packages; the files, the conffile and
#      the socketd user are there; the library exports only its API and
#      socketd-cli loads the installed one; with systemd as PID 1 the service and the
#      socket are active and answer on 7411, and reload works; without
#      it, the postinst enabled the units but started nothing
#   4. socketd -t -c /etc/socketd.conf
#   5. the installed socketd, in the foreground with a copy of the
#      installed config on a free loopback port and user = "socketd",
#      answers the installed socketd-cli (ping, info), drops to the
#      socketd user, reloads on SIGHUP, stops on SIGTERM with status 0;
#      the example of libsocketd-dev, copied out and built with make
#      and pkg-config alone, answers from it too
#   6. apt-get purge -y of the three: every file is gone (the system user
#      stays, as is Debian practice)
# Every process it starts is stopped by PID; every wait is bounded.  If
# the test fails after installing, it still purges.
set -uo pipefail
TOP=$1
WORK=$2
SKIP_REASON=${3:-}

skip() {
	echo "SKIP: $*"
	exit 77
}
FAILED=0
fail() {
	echo "FAIL: $*" >&2
	FAILED=$((FAILED + 1))
}
pass() {
	echo "ok: $*"
}
die() {
	echo "FAIL: $*" >&2
	exit 1
}

[ -z "$SKIP_REASON" ] || skip "$SKIP_REASON"
if [ "${SOCKETD_DEB_TEST:-}" != 1 ] && [ "${CI:-}" != true ]; then
	skip "opt-in: set SOCKETD_DEB_TEST=1 (CI=true does the same);" \
	    "it installs and purges the package and creates the socketd user"
fi
command -v dpkg-buildpackage >/dev/null 2>&1 ||
	skip "dpkg-buildpackage is not installed (apt-get install dpkg-dev debhelper)"
[ "$(id -u)" -eq 0 ] || skip "installing the package needs root"
PKGS="socketd libsocketd1 libsocketd-dev socketd-dev python3-socketd"
for p in $PKGS; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ -n "$status" ] && [ "$status" != not-installed ]; then
		skip "the $p package is already on this machine ($status);" \
		    "this test does not touch it"
	fi
done

rm -rf "$WORK"
mkdir -p "$WORK/out"
export DEBIAN_FRONTEND=noninteractive
BOUND=""
command -v timeout >/dev/null 2>&1 && BOUND="timeout -k 5 60"

# 1. Build.  The suite this tree's package build would run (dh_auto_test)
# is the one `make check` has just run on the same tree, and it took three
# of this test's four minutes: nocheck, unless SOCKETD_DEB_CHECK=1 asks for
# it (a Debian build without nocheck still runs it).
if [ "${SOCKETD_DEB_CHECK:-0}" != 1 ]; then
	export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }nocheck"
fi
if ! "$TOP/packaging/build-deb.sh" "$WORK/out" >"$WORK/build.log" 2>&1; then
	tail -60 "$WORK/build.log" >&2
	die "packaging/build-deb.sh failed (log: $WORK/build.log)"
fi
debs=()
for p in $PKGS; do
	f=("$WORK"/out/"$p"_*.deb)
	[ -f "${f[0]}" ] || die "no ${p}_*.deb in $WORK/out"
	debs+=("./$(basename "${f[0]}")")
done
pass "built ${debs[*]}"
# The library package: its symbols file and shlibs, and socketd's
# dependency on it through them.
ctl=$WORK/libsocketd1.control
dpkg-deb -e "$WORK/out/${debs[1]#./}" "$ctl" || die "dpkg-deb -e libsocketd1"
if grep -q '^libsocketd\.so\.1 libsocketd1 #MINVER#' "$ctl/symbols" &&
    grep -q '^ socketd_connect@LIBSOCKETD_1 ' "$ctl/symbols"; then
	pass "libsocketd1 ships its symbols file"
else
	fail "libsocketd1 has no (or a wrong) symbols file"
fi
dep=$(dpkg-deb -f "$WORK/out/${debs[0]#./}" Depends)
if grep -q 'libsocketd1 (>= ' <<<"$dep"; then
	pass "socketd Depends: $dep"
else
	fail "socketd does not depend on libsocketd1: $dep"
fi
for p in libsocketd1:libs libsocketd-dev:libdevel; do
	f=("$WORK"/out/"${p%%:*}"_*.deb)
	sec=$(dpkg-deb -f "${f[0]}" Section)
	ma=$(dpkg-deb -f "${f[0]}" Multi-Arch)
	if [ "$sec" = "${p#*:}" ] && [ "$ma" = same ]; then
		pass "${p%%:*}: Section $sec, Multi-Arch $ma"
	else
		fail "${p%%:*}: Section '$sec', Multi-Arch '$ma'"
	fi
done

# 2. Lint.
if command -v lintian >/dev/null 2>&1; then
	if lintian --pedantic -I --fail-on error,warning \
	    "$WORK"/out/socketd_*.changes >"$WORK/lintian.log" 2>&1; then
		pass "lintian: $(grep -c . "$WORK/lintian.log" || true) line(s)" \
		    "of output, no error or warning"
		cat "$WORK/lintian.log"
	else
		cat "$WORK/lintian.log" >&2
		fail "lintian"
	fi
else
	echo "note: lintian is not installed: the package is not linted"
fi

# Processes running the installed daemon (by executable, not by name).
installed_daemons() {
	local p exe
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		case $exe in
		"/usr/sbin/socketd" | "/usr/sbin/socketd (deleted)")
			echo "${p#/proc/}"
			;;
		esac
	done
	return 0
}

DPID=""
INSTALLED=0
RUN=""
cleanup() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	if [ "$INSTALLED" -eq 1 ]; then
		echo "cleanup: purging $PKGS" >&2
		# shellcheck disable=SC2086 # a list of package names
		apt-get purge -y $PKGS >/dev/null 2>&1 || true
	fi
	[ -z "$RUN" ] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# 3. Install.
if ! (cd "$WORK/out" && apt-get install -y "${debs[@]}") \
    >"$WORK/install.log" 2>&1; then
	cat "$WORK/install.log" >&2
	die "apt-get install failed"
fi
INSTALLED=1
pass "apt-get install ${debs[*]}"
grep -E 'Creating|Created symlink' "$WORK/install.log" || true

FILES="/usr/sbin/socketd /usr/bin/socketd-cli /etc/socketd.conf
/lib/systemd/system/socketd.service /lib/systemd/system/socketd.socket
/usr/lib/sysusers.d/socketd.conf
/usr/share/man/man8/socketd.8.gz /usr/share/man/man5/socketd.conf.5.gz
/usr/share/man/man1/socketd-cli.1.gz /usr/share/man/man7/socketd-protocol.7.gz
/usr/share/doc/socketd/copyright"
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
LIB=/usr/lib/$MA/libsocketd.so.1
FILES="$FILES $LIB /usr/lib/$MA/libsocketd.so.1.1.0
/usr/lib/$MA/libsocketd.so /usr/lib/$MA/pkgconfig/libsocketd.pc
/usr/include/socketd/client.h /usr/share/man/man3/libsocketd.3.gz
/usr/share/man/man3/socketd_connect.3.gz
/usr/share/man/man3/socketd_async.3.gz /usr/share/man/man3/socketd_async_new.3.gz
/usr/share/doc/libsocketd1/copyright
/usr/share/doc/libsocketd-dev/examples/socketd-hello.c
/usr/share/doc/libsocketd-dev/examples/Makefile
/usr/include/socketd/module.h /usr/lib/$MA/pkgconfig/socketd-module.pc
/usr/share/man/man3/socketd-module.3.gz
/usr/lib/$MA/socketd/modules/hello.so
/usr/lib/python3/dist-packages/socketd/__init__.py
/usr/lib/python3/dist-packages/socketd/py.typed"
for f in $FILES; do
	[ -e "$f" ] || fail "$f is not installed"
done
pass "installed: $(tr '\n' ' ' <<<"$FILES")"
if dpkg-query -W -f='${Conffiles}\n' socketd | grep -q '^ /etc/socketd.conf '; then
	pass "/etc/socketd.conf is a conffile"
else
	fail "/etc/socketd.conf is not a conffile"
fi
# The installed library exports its API and nothing else.
if nm -D --defined-only "$LIB" | awk '{ print $NF }' |
    grep -Ev '^(socketd_[a-z_]+@@LIBSOCKETD_1(\.1)?|LIBSOCKETD_1(\.1)?)$' \
    >"$WORK/extra"; then
	fail "$LIB exports more than the API: $(tr '\n' ' ' <"$WORK/extra")"
else
	pass "$LIB exports $(nm -D --defined-only "$LIB" | grep -c ' T ')" \
	    "functions, all socketd_*@@LIBSOCKETD_1 or _1.1"
fi
# /lib is /usr/lib on a merged-/usr system: compare real paths.
loaded=$(ldd /usr/bin/socketd-cli | awk '$1 == "libsocketd.so.1" { print $3 }')
if [ -n "$loaded" ] &&
    [ "$(readlink -f "$loaded")" = "$(readlink -f "$LIB")" ]; then
	pass "socketd-cli loads $LIB ($loaded)"
else
	fail "socketd-cli does not load $LIB: $(ldd /usr/bin/socketd-cli)"
fi
if id socketd >/dev/null 2>&1; then
	pass "user: $(getent passwd socketd)"
else
	fail "the postinst did not create the socketd user"
fi
if command -v man >/dev/null 2>&1; then
	if man -w socketd.conf >/dev/null 2>&1; then
		pass "man socketd.conf: $(man -w socketd.conf)"
	else
		fail "man -w socketd.conf finds no page"
	fi
fi

CLI=/usr/bin/socketd-cli
if [ -d /run/systemd/system ]; then
	# systemd is PID 1: the postinst enabled and started both units.
	for u in socketd.socket socketd.service; do
		if systemctl is-active --quiet "$u"; then
			pass "$u is active"
		else
			fail "$u is not active"
			systemctl status --no-pager "$u" >&2 || true
		fi
	done
	if $BOUND "$CLI" -H 127.0.0.1 -p 7411 -t 2 ping; then
		pass "socketd.service answers on 127.0.0.1:7411"
	else
		fail "no answer on 127.0.0.1:7411"
	fi
	if systemctl reload socketd.service &&
	    $BOUND "$CLI" -H 127.0.0.1 -p 7411 -t 2 ping >/dev/null; then
		pass "systemctl reload socketd"
	else
		fail "systemctl reload socketd"
	fi
	systemctl status --no-pager socketd.service || true
	journalctl -u socketd.service --no-pager -n 20 2>/dev/null || true
else
	# Not systemd: deb-systemd-helper enabled the units for a later
	# boot under systemd, and deb-systemd-invoke started nothing.
	for l in /etc/systemd/system/multi-user.target.wants/socketd.service \
	    /etc/systemd/system/sockets.target.wants/socketd.socket; do
		[ -L "$l" ] || fail "$l: the postinst did not enable the unit"
	done
	running=$(installed_daemons)
	if [ -n "$running" ]; then
		fail "systemd is not PID 1, yet /usr/sbin/socketd runs: $running"
	else
		pass "systemd is not PID 1: units enabled, nothing started"
	fi
fi

# 4. The installed configuration.
if out=$(/usr/sbin/socketd -t -c /etc/socketd.conf 2>&1); then
	pass "$out"
else
	fail "socketd -t -c /etc/socketd.conf: $out"
fi

# 5. The installed daemon in the foreground, on a free loopback port, as
# the socketd user.  The copy is readable by that user for the reload,
# in /tmp, as the build directory's parents may not be.
RUN=$(mktemp -d /tmp/socketd-deb-run.XXXXXX) || die "mktemp"
chmod 755 "$RUN"
attempt=0
up=0
while [ "$attempt" -lt 5 ] && [ "$up" -eq 0 ]; do
	attempt=$((attempt + 1))
	PORT=$((20000 + RANDOM % 40000))
	[ "$PORT" -ne 7411 ] || continue
	# The example module too, from the default module_dir.
	sed -e "s|^listen = .*|listen = [ \"127.0.0.1:$PORT\" ];|" \
	    -e 's|^#user = "socketd";|user = "socketd";|' \
	    -e '/^#modules = (/,/^#);$/ s|^#||' \
	    -e 's|^\tlisten = \[ "127.0.0.1:9411" \];|\tlisten = [ ];|' \
	    -e 's|^\tagent_listen = \[ "127.0.0.1:9412" \];|\tagent_listen = [ ];|' \
	    /etc/socketd.conf >"$RUN/socketd.conf"
	chmod 644 "$RUN/socketd.conf"
	if ! grep -q "^listen = \[ \"127.0.0.1:$PORT\" \];" "$RUN/socketd.conf" ||
	    ! grep -q '^user = "socketd";' "$RUN/socketd.conf"; then
		die "could not edit listen and user in a copy of /etc/socketd.conf"
	fi
	/usr/sbin/socketd -c "$RUN/socketd.conf" 2>"$RUN/socketd.log" &
	DPID=$!
	for _ in $(seq 50); do
		kill -0 "$DPID" 2>/dev/null || break
		if $BOUND "$CLI" -H 127.0.0.1 -p "$PORT" -t 1 ping \
		    >"$RUN/ping" 2>&1; then
			up=1
			break
		fi
		sleep 0.1
	done
	if [ "$up" -eq 0 ]; then
		kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
		DPID=""
	fi
done
if [ "$up" -eq 0 ]; then
	cat "$RUN/socketd.log" >&2
	die "the installed socketd did not answer on a free port (5 tries)"
fi
pass "socketd -c $RUN/socketd.conf, pid $DPID: $(cat "$RUN/ping")"
if $BOUND "$CLI" -H 127.0.0.1 -p "$PORT" -t 2 info >"$RUN/info" 2>&1 &&
    [ -s "$RUN/info" ]; then
	pass "socketd-cli info: $(tr '\n' ' ' <"$RUN/info")"
else
	cat "$RUN/info" >&2
	fail "socketd-cli info"
fi
# The installed hello module, called by name.
if $BOUND "$CLI" -H 127.0.0.1 -p "$PORT" -t 2 call hello.upper abc \
    >"$RUN/upper" 2>&1 && [ "$(cat "$RUN/upper")" = ABC ]; then
	pass "socketd-cli call hello.upper abc: $(cat "$RUN/upper")"
else
	cat "$RUN/upper" "$RUN/socketd.log" >&2
	fail "the installed hello module does not answer"
fi
# socketd-dev: a module built out of tree from the installed files alone,
# which socketd -t then loads and checks.
mkdir -m 755 "$RUN/mod"
cp "$TOP/examples/modules/hello/hello.c" "$RUN/mod/"
if (cd "$RUN/mod" && cc -shared -fPIC \
    $(pkg-config --cflags socketd-module) -o hello.so hello.c -lpthread) \
    >"$RUN/mod.log" 2>&1 &&
    printf 'modules = ( { name = "hello"; path = "%s/mod/hello.so"; opcode = 0x90; } );\n' \
    "$RUN" >"$RUN/mod.conf" &&
    /usr/sbin/socketd -t -c "$RUN/mod.conf" >>"$RUN/mod.log" 2>&1; then
	pass "a module built with \$(pkg-config --cflags socketd-module) loads"
else
	cat "$RUN/mod.log" >&2
	fail "socketd-dev: an out-of-tree module does not build or load"
fi
# python3-socketd against the installed daemon.
if $BOUND /usr/bin/python3 -c "import socketd, sys
with socketd.Client('127.0.0.1', $PORT, timeout=2) as c:
    sys.stdout.write(c.call('hello.upper', b'py').decode())" \
    >"$RUN/py" 2>&1 && [ "$(cat "$RUN/py")" = PY ]; then
	pass "python3-socketd: call('hello.upper', b'py') = $(cat "$RUN/py")"
else
	cat "$RUN/py" >&2
	fail "python3-socketd does not reach the installed daemon"
fi
# The -dev package's example, built from the installed files alone.
mkdir "$RUN/example"
cp /usr/share/doc/libsocketd-dev/examples/* "$RUN/example/"
if make -C "$RUN/example" >"$RUN/make.log" 2>&1 &&
    $BOUND "$RUN/example/socketd-hello" 127.0.0.1 "$PORT" >"$RUN/hello" 2>&1 &&
    grep -q '^echo: hello$' "$RUN/hello"; then
	pass "libsocketd-dev's example: $(tr '\n' ' ' <"$RUN/hello")"
else
	cat "$RUN/make.log" "$RUN/hello" >&2
	fail "libsocketd-dev's example does not build or run"
fi
uid=$(id -u socketd)
if awk -v u="$uid" '/^Uid:/ { ok = ($2 == u && $3 == u && $4 == u && $5 == u) }
    END { exit !ok }' "/proc/$DPID/status"; then
	pass "runs as the socketd user (uid $uid)"
else
	fail "does not run as socketd: $(grep '^Uid:' "/proc/$DPID/status")"
fi
kill -HUP "$DPID"
reloaded=0
for _ in $(seq 50); do
	if grep -q 'reloaded' "$RUN/socketd.log"; then
		reloaded=1
		break
	fi
	sleep 0.1
done
if [ "$reloaded" -eq 1 ] &&
    $BOUND "$CLI" -H 127.0.0.1 -p "$PORT" -t 2 ping >/dev/null 2>&1; then
	pass "SIGHUP: reloaded, still answering"
else
	cat "$RUN/socketd.log" >&2
	fail "SIGHUP: no reload logged, or no answer after it"
fi
kill -TERM "$DPID"
stopped=0
for _ in $(seq 150); do
	if ! kill -0 "$DPID" 2>/dev/null; then
		stopped=1
		break
	fi
	sleep 0.1
done
if [ "$stopped" -eq 1 ]; then
	wait "$DPID"
	rc=$?
	DPID=""
	if [ "$rc" -eq 0 ]; then
		pass "SIGTERM: stopped with status 0"
	else
		cat "$RUN/socketd.log" >&2
		fail "SIGTERM: exit status $rc"
	fi
else
	fail "SIGTERM: still running after 15 s"
fi

# 6. Purge.
# shellcheck disable=SC2086 # a list of package names
if apt-get purge -y $PKGS >"$WORK/purge.log" 2>&1; then
	INSTALLED=0
	pass "apt-get purge -y $PKGS"
else
	cat "$WORK/purge.log" >&2
	die "apt-get purge failed"
fi
for f in $FILES /etc/systemd/system/multi-user.target.wants/socketd.service \
    /etc/systemd/system/sockets.target.wants/socketd.socket; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		fail "$f is still there after purge"
	fi
done
for p in $PKGS; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ -z "$status" ] || [ "$status" = not-installed ] ||
		fail "dpkg still knows $p after purge: $status"
done
leftover=$(installed_daemons)
[ -z "$leftover" ] || fail "/usr/sbin/socketd still runs: $leftover"
pass "purged: every file gone; the socketd user stays (Debian practice)"

if [ "$FAILED" -gt 0 ]; then
	echo "$FAILED check(s) failed" >&2
	exit 1
fi
echo "all checks passed"
