#!/bin/sh
# client.abi: libsocketd.so exports its API and nothing else, and every
# list of that API says the same:
#   - nm -D --defined-only: only socketd_* functions, each at version
#     LIBSOCKETD_1 or LIBSOCKETD_1.1 (and the version nodes themselves);
#   - client/libsocketd.map (the version script) lists exactly those,
#     each under the node the library puts it in;
#   - include/socketd/client.h declares exactly those SOCKETD_API;
#   - packaging/debian/libsocketd1.symbols has exactly those, at the
#     same nodes (so a symbol moved between nodes fails here too);
#   - man/libsocketd.3 and man/socketd_async.3 name each of them in NAME;
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
NODES='^LIBSOCKETD_1(\.1)?$'
nm -D --defined-only "$LIB" | awk '{ print $NF }' | sort >"$TMP/all"
grep -Ev "$NODES" "$TMP/all" >"$TMP/syms" || true
if grep -Ev '^socketd_[a-z_]*@@LIBSOCKETD_1(\.1)?$' "$TMP/syms" >"$TMP/bad"; then
	fail "exported beyond the API (not socketd_*@@LIBSOCKETD_1 or _1.1):"
	cat "$TMP/bad" >&2
fi
sed 's/@@.*$//' "$TMP/syms" | sort >"$TMP/lib"
sed 's/@@/@/' "$TMP/syms" | sort >"$TMP/libv"
n=$(wc -l <"$TMP/lib")
[ "$n" -gt 0 ] || fail "nm -D found no socketd_* symbol in $LIB"
for node in LIBSOCKETD_1 LIBSOCKETD_1.1; do
	grep -qx "$node" "$TMP/all" || fail "no version node $node"
done

# same NAME FILE [REF]: FILE lists what the library exports: the names
# ($TMP/lib), or with REF $TMP/libv each name@NODE.
same() {
	if ! diff -u "${3:-$TMP/lib}" "$2" >"$TMP/diff"; then
		fail "$1 differs from the library's exports (- library, + $1):"
		cat "$TMP/diff" >&2
	else
		echo "ok: $1 lists the $n exported functions"
	fi
}

# name@NODE for every name under a "NODE {" line of the version script.
awk '/^[A-Z0-9_.]+ *\{/ { node = $1 }
    /^[[:space:]]*socketd_[a-z_]+;/ { gsub(/[ \t;]/, ""); print $0 "@" node }' \
    "$TOP/client/libsocketd.map" | sort >"$TMP/map"
same client/libsocketd.map "$TMP/map" "$TMP/libv"

# SOCKETD_API <type...> name( : the word before the first "(", outside
# preprocessor lines.
grep -v '^#' "$TOP/include/socketd/client.h" | tr '\n' ' ' |
	grep -oE 'SOCKETD_API [^;(]*\(' |
	sed -E 's/.*[ *]([a-z_0-9]+)\($/\1/' | sort >"$TMP/hdr"
same include/socketd/client.h "$TMP/hdr"

sed -n 's/^ \(socketd_[a-z_]*@LIBSOCKETD_1[.1]*\) .*/\1/p' \
    "$TOP/packaging/debian/libsocketd1.symbols" | sort >"$TMP/deb"
same packaging/debian/libsocketd1.symbols "$TMP/deb" "$TMP/libv"

awk '/^\.Sh NAME/ { on = 1; next } /^\.Sh / { on = 0 }
    on && /^\.Nm socketd_/ && $2 != "socketd_async" { print $2 }' \
    "$TOP/man/libsocketd.3" "$TOP/man/socketd_async.3" | sort >"$TMP/man"
same "man/libsocketd.3 and man/socketd_async.3" "$TMP/man"

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
