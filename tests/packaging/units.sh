#!/bin/sh
# packaging.units: the systemd units are valid and sandboxed.
#
#	units.sh TOP THRESHOLD
#
# - systemd-analyze verify prints nothing for socketd.service and
#   socketd.socket but "is not executable" (when /usr/sbin/socketd is not
#   installed).  It exits 0 on unknown keys and bad values, so any other
#   line is a failure, whatever its exit code.
# - systemd-analyze security --offline=true rates socketd.service at or
#   below THRESHOLD (0-100; the displayed exposure times ten).
# - systemd-sysusers (in a scratch root) creates from socketd.sysusers the
#   User= and Group= of the service.
# - socketd.socket listens where config/socketd.conf's default "listen"
#   does, so that the service behaves the same with and without it.
# Skipped (77) without systemd-analyze.
set -eu
TOP=$1
THRESHOLD=$2
UNITS=$TOP/packaging/systemd
FAILED=0

fail() {
	echo "FAIL: $*" >&2
	FAILED=$((FAILED + 1))
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze is not installed (Debian: the systemd package)"
	exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/socketd-units.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# verify: run from the units' directory so that the Wants= on
# socketd.socket resolves to ours.
(cd "$UNITS" && systemd-analyze verify --man=no ./socketd.service \
    ./socketd.socket) >"$TMP/verify" 2>&1 || true
if grep -v 'is not executable' "$TMP/verify" >"$TMP/verify.bad"; then
	fail "systemd-analyze verify complained:"
	cat "$TMP/verify.bad" >&2
else
	echo "ok: systemd-analyze verify: $(tr '\n' ' ' <"$TMP/verify")"
fi

rc=0
systemd-analyze security --offline=true --threshold="$THRESHOLD" \
    "$UNITS/socketd.service" >"$TMP/security" 2>&1 || rc=$?
level=$(grep 'Overall exposure level' "$TMP/security" || true)
if [ "$rc" -ne 0 ] || [ -z "$level" ]; then
	fail "systemd-analyze security --threshold=$THRESHOLD (rc $rc):"
	grep -E '✗|Overall' "$TMP/security" >&2 || cat "$TMP/security" >&2
else
	echo "ok: $level (threshold $THRESHOLD)"
fi

# The sysusers.d file creates the user and group the service runs as.
mkdir -p "$TMP/root/etc"
user=$(sed -n 's/^User=//p' "$UNITS/socketd.service")
group=$(sed -n 's/^Group=//p' "$UNITS/socketd.service")
if systemd-sysusers --root="$TMP/root" "$UNITS/socketd.sysusers" \
    >"$TMP/sysusers" 2>&1 &&
    ! grep -v '^Creating ' "$TMP/sysusers" >&2 &&
    grep -q "^$user:x:[0-9]*:[0-9]*:" "$TMP/root/etc/passwd" &&
    grep -q "^$group:x:" "$TMP/root/etc/group"; then
	echo "ok: socketd.sysusers: $(grep "^$user:" "$TMP/root/etc/passwd")"
else
	cat "$TMP/sysusers" >&2
	fail "socketd.sysusers does not create User=$user and Group=$group"
fi

# The socket unit's ListenStream= against the sample config's listen.
sock=$(sed -n 's/^ListenStream=//p' "$UNITS/socketd.socket" | sort)
conf=$(sed -n 's/^listen *= *\[\(.*\)\];.*/\1/p' "$TOP/config/socketd.conf" |
    tr ',' '\n' | sed 's/^[ "]*//; s/[ "]*$//' | sed '/^$/d' | sort)
if [ -z "$sock" ] || [ "$sock" != "$conf" ]; then
	fail "socketd.socket listens on [$(printf '%s' "$sock" | tr '\n' ' ')]" \
	    "but config/socketd.conf's listen is" \
	    "[$(printf '%s' "$conf" | tr '\n' ' ')]"
else
	echo "ok: socketd.socket and socketd.conf both listen on" \
	    "$(printf '%s' "$sock" | tr '\n' ' ')"
fi

if [ "$FAILED" -gt 0 ]; then
	echo "$FAILED check(s) failed" >&2
	exit 1
fi
echo "all checks passed"
