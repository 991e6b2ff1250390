#!/bin/sh
# packaging.rpmlint: rpmlint finds nothing in socketd.spec beyond the
# filters in socketd.rpmlintrc (each with its reason).  rpmlint exits 0
# on warnings, so the summary line is what counts.
#
#	rpmlint.sh TOP
#
# Skipped (77) without rpmlint (Debian: apt-get install rpmlint).
set -eu
RPM=$1/packaging/rpm
if ! command -v rpmlint >/dev/null 2>&1; then
	echo "SKIP: rpmlint is not installed"
	exit 77
fi
rc=0
out=$(rpmlint -r "$RPM/socketd.rpmlintrc" "$RPM/socketd.spec" 2>&1) || rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 0 ] ||
    ! printf '%s\n' "$out" | grep -q ' 0 errors, 0 warnings'; then
	echo "FAIL: rpmlint (exit $rc)" >&2
	exit 1
fi
