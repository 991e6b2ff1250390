#!/bin/sh
# lint.sh MANDIR: lint every manual page MANDIR/*.[1-9].
#
# A page passes when
#   mandoc -Tlint -Wwarning PAGE   prints nothing and exits 0;
#   man --warnings -E UTF-8 -l -Tutf8 -Z PAGE   (lintian's check, in
#                                  lintian's environment) prints nothing
#                                  on stderr: groff reports problems there
#                                  but man still exits 0;
#   lexgrog PAGE                   parses the NAME section (whatis/apropos).
#
# Without mandoc, man or lexgrog the test cannot judge the pages: it says
# so and exits 77, which ctest reports as skipped (SKIP_RETURN_CODE), never
# as passed.  Debian: apt-get install mandoc man-db.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 MANDIR" >&2
	exit 2
fi
mandir=$1

missing=
for tool in mandoc man lexgrog; do
	command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
	echo "SKIP: not installed:$missing (apt-get install mandoc man-db)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

pages=0
failed=0
for page in "$mandir"/*.[1-9]; do
	[ -f "$page" ] || continue
	pages=$((pages + 1))
	name=${page##*/}

	rc=0
	mandoc -Tlint -Wwarning "$page" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$tmp/out" ]; then
		echo "FAIL: $name: mandoc -Tlint -Wwarning (exit $rc):"
		sed 's/^/    /' "$tmp/out"
		failed=$((failed + 1))
	fi

	# MAN_DISABLE_SECCOMP: man-db's sandbox fails in some containers,
	# which would be a false alarm; it changes nothing in the output.
	rc=0
	env -i PATH="$PATH" LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
	    MAN_DISABLE_SECCOMP=1 \
	    man --warnings -E UTF-8 -l -Tutf8 -Z "$page" \
	    >/dev/null 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$tmp/err" ]; then
		echo "FAIL: $name: man --warnings -E UTF-8 -l -Tutf8 -Z" \
		    "(exit $rc):"
		sed 's/^/    /' "$tmp/err"
		failed=$((failed + 1))
	fi

	rc=0
	lexgrog "$page" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: $name: lexgrog (exit $rc):"
		sed 's/^/    /' "$tmp/out"
		failed=$((failed + 1))
	fi
done

if [ "$pages" -eq 0 ]; then
	echo "FAIL: no manual pages in $mandir"
	exit 1
fi
if [ "$failed" -ne 0 ]; then
	echo "$failed check(s) failed over $pages page(s)"
	exit 1
fi
echo "ok: $pages page(s) clean under mandoc -Tlint -Wwarning," \
    "man --warnings and lexgrog"
