#!/bin/sh
# client.abi: libsocketd.so exports its API and nothing else, and every
# list of that API says the same:
#   - nm -D --defined-only: only socketd_* functions, each at version
#     LIBSOCKETD_1 (and the version node itself);
#   - client/libsocketd.map (the version script) lists exactly those;
#   - include/socketd/client.h declares exactly those SOCKETD_API;
#   - packaging/debian/libsocketd1.symbols has exactly those;
#   - man/libsocketd.3 names each of them in NAME;
#   - the SONAME is libsocketd.so.1 and the library calls no exit();
#   - socketd-cli is linked against libsocketd.so.1.
#
#	abi.sh TOP LIBRARY SOCKETD-CLI
set -eu
TOP=$1
LIB=$2
CLI=$3
FAILED=0
fail() {
	echo "FAIL: $*" >&2
	FAILED=$((FAILED + 1))
}
for tool in nm objdump; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is not installed (binutils)"
		exit 77
	fi
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# What the library exports.
nm -D --defined-only "$LIB" | awk '{ print $NF }' | sort >"$TMP/all"
grep -v '^LIBSOCKETD_1$' "$TMP/all" >"$TMP/syms" || true
if grep -v '^socketd_[a-z_]*@@LIBSOCKETD_1$' "$TMP/syms" >"$TMP/bad"; then
	fail "exported beyond the API (not socketd_*@@LIBSOCKETD_1):"
	cat "$TMP/bad" >&2
fi
sed 's/@@LIBSOCKETD_1$//' "$TMP/syms" >"$TMP/lib"
n=$(wc -l <"$TMP/lib")
[ "$n" -gt 0 ] || fail "nm -D found no socketd_* symbol in $LIB"
grep -q '^LIBSOCKETD_1$' "$TMP/all" || fail "no version node LIBSOCKETD_1"

same() { # same NAME FILE: FILE lists what the library exports
	if ! diff -u "$TMP/lib" "$2" >"$TMP/diff"; then
		fail "$1 differs from the library's exports (- library, + $1):"
		cat "$TMP/diff" >&2
	else
		echo "ok: $1 lists the $n exported functions"
	fi
}

grep -oE '^[[:space:]]*socketd_[a-z_]+;' "$TOP/client/libsocketd.map" |
	tr -d ' \t;' | sort >"$TMP/map"
same client/libsocketd.map "$TMP/map"

# SOCKETD_API <type...> name( : the word before the first "(", outside
# preprocessor lines.
grep -v '^#' "$TOP/include/socketd/client.h" | tr '\n' ' ' |
	grep -oE 'SOCKETD_API [^;(]*\(' |
	sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort >"$TMP/hdr"
same include/socketd/client.h "$TMP/hdr"

sed -n 's/^ \(socketd_[a-z_]*\)@LIBSOCKETD_1 .*/\1/p' \
    "$TOP/packaging/debian/libsocketd1.symbols" | sort >"$TMP/deb"
same packaging/debian/libsocketd1.symbols "$TMP/deb"

awk '/^\.Sh NAME/ { on = 1; next } /^\.Sh / { on = 0 }
    on && /^\.Nm socketd_/ { print $2 }' "$TOP/man/libsocketd.3" |
	sort >"$TMP/man"
same man/libsocketd.3 "$TMP/man"

soname=$(objdump -p "$LIB" | awk '$1 == "SONAME" { print $2 }')
if [ "$soname" = libsocketd.so.1 ]; then
	echo "ok: SONAME $soname"
else
	fail "SONAME is '$soname', expected libsocketd.so.1"
fi
if nm -D --undefined-only "$LIB" | grep -Eq ' (_?exit|abort)(@|$)'; then
	fail "the library calls exit() or abort():"
	nm -D --undefined-only "$LIB" | grep -E ' (_?exit|abort)(@|$)' >&2
else
	echo "ok: no exit() or abort() in the library"
fi
if objdump -p "$CLI" | grep -q 'NEEDED *libsocketd\.so\.1$'; then
	echo "ok: socketd-cli links libsocketd.so.1"
else
	fail "socketd-cli does not link libsocketd.so.1"
fi

if [ "$FAILED" -gt 0 ]; then
	echo "$FAILED check(s) failed" >&2
	exit 1
fi
echo "all checks passed"
