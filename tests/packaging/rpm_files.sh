#!/bin/sh
# packaging.rpm_files: socketd.spec's %files is exactly what the build
# installs.
#
#	rpm_files.sh TOP CMAKE WORKDIR [SPEC]
#
# rpm cannot run here, so this does what rpmbuild would: it configures a
# fresh build of TOP with the -D options of the spec's %cmake (plus the
# prefix %cmake itself sets, and no tests), builds it, installs it with
# DESTDIR, and compares the files there with %files, whose macros are
# expanded with the table below (Fedora's values).  Every installed file
# must match a %files line (rpmbuild: "Installed (but unpackaged) file(s)
# found") and every %files line must match an installed file ("File not
# found").  %license and %doc name files of the source tree: they must
# exist there.  The installed unit's ExecStart must name the installed
# daemon and config file.
set -euf # -f: the %files globs are matched with case, never expanded
TOP=$1
CMAKE=$2
WORK=$3
SPEC=${4:-$TOP/packaging/rpm/socketd.spec}
FAILED=0

fail() {
	echo "FAIL: $*" >&2
	FAILED=$((FAILED + 1))
}

version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
# name value: what rpm on Fedora expands %{name} or %name to.
MACROS="name socketd
version $version
_prefix /usr
_exec_prefix /usr
_bindir /usr/bin
_sbindir /usr/sbin
_sysconfdir /etc
_datadir /usr/share
_mandir /usr/share/man
_docdir /usr/share/doc
_includedir /usr/include
_libdir /usr/lib64
_libexecdir /usr/libexec
_localstatedir /var
_sharedstatedir /var/lib
_rundir /run
_unitdir /usr/lib/systemd/system
_userunitdir /usr/lib/systemd/user
_sysusersdir /usr/lib/sysusers.d
_tmpfilesdir /usr/lib/tmpfiles.d"

# A sed script for the table: %{m} and %m (not followed by a name char).
SEDS=$(printf '%s\n' "$MACROS" | while read -r m v; do
	printf 's|%%{%s}|%s|g\ns|%%%s\\([^A-Za-z0-9_]\\)|%s\\1|g\ns|%%%s$|%s|g\n' \
	    "$m" "$v" "$m" "$v" "$m" "$v"
done)
expand() {
	_e=$(printf '%s\n' "$1" | sed "$SEDS")
	case $_e in
	*%*)
		echo "unknown macro in '$1' (add it to the table in $0)" >&2
		return 1
		;;
	esac
	printf '%s\n' "$_e"
}

# The -D options of the %cmake block (backslash-continued lines).
cmake_opts=$(awk '
	/^%cmake([ \t\\]|$)/ { on = 1 }
	on { line = $0; sub(/\\$/, "", line); print line
	     if ($0 !~ /\\$/) on = 0 }' "$SPEC" | tr '[:blank:]' '\n' | grep '^-D' || true)
if [ -z "$cmake_opts" ]; then
	fail "no %cmake -D options found in $SPEC"
fi
opts=""
for o in $cmake_opts; do
	e=$(expand "$o") || fail "%cmake option $o"
	opts="$opts $e"
done
echo "%cmake options: $opts"

# %files: from "%files" to the next section.
files=$(awk '
	/^%files([ \t]|$)/ { on = 1; next }
	/^%(changelog|package|description|prep|build|install|check|pre|post|preun|postun|posttrans|pretrans|triggerin|triggerun|files)([ \t]|$)/ { on = 0 }
	on && !/^[ \t]*(#|$)/' "$SPEC")
if [ -z "$files" ]; then
	fail "no %files section in $SPEC"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
# shellcheck disable=SC2086 # $opts is a list of words
if ! "$CMAKE" -S "$TOP" -B "$WORK/build" -DCMAKE_INSTALL_PREFIX=/usr \
    -DBUILD_TESTING=OFF $opts >"$WORK/configure.log" 2>&1; then
	cat "$WORK/configure.log" >&2
	echo "FAIL: configure" >&2
	exit 1
fi
if ! "$CMAKE" --build "$WORK/build" --parallel "$(nproc 2>/dev/null || echo 2)" \
    >"$WORK/build.log" 2>&1; then
	tail -40 "$WORK/build.log" >&2
	echo "FAIL: build" >&2
	exit 1
fi
if ! DESTDIR="$WORK/root" "$CMAKE" --install "$WORK/build" \
    >"$WORK/install.log" 2>&1; then
	cat "$WORK/install.log" >&2
	echo "FAIL: install" >&2
	exit 1
fi
installed=$(cd "$WORK/root" && find . ! -type d | sed 's|^\.||' | sort)

# Patterns from %files; %license/%doc checked against the source tree.
patterns=""
dirs=""
while read -r line; do
	# shellcheck disable=SC2086 # split into words (no globbing: set -f)
	set -- $line
	case $1 in
	%license | %doc)
		shift
		for f in "$@"; do
			[ -e "$TOP/$f" ] || fail "$line: $f is not in the source tree"
		done
		continue
		;;
	%ghost)
		continue
		;;
	%dir)
		e=$(expand "$2") || fail "%files line: $line"
		dirs="$dirs $e"
		continue
		;;
	esac
	while :; do
		case $1 in
		%config* | %attr* | %verify* | %defattr*)
			shift
			;;
		*)
			break
			;;
		esac
	done
	if p=$(expand "$1"); then
		patterns="$patterns $p"
	else
		fail "%files line: $line"
	fi
done <<EOF
$files
EOF

for d in $dirs; do
	[ -d "$WORK/root$d" ] || fail "%dir $d: not installed"
done
for f in $installed; do
	hit=0
	for p in $patterns; do
		# shellcheck disable=SC2254 # $p is a glob on purpose
		case $f in
		$p) hit=1 ;;
		esac
	done
	if [ "$hit" -eq 1 ]; then
		echo "ok: $f"
	else
		fail "$f is installed but not in %files"
	fi
done
for p in $patterns; do
	hit=0
	for f in $installed; do
		# shellcheck disable=SC2254
		case $f in
		$p) hit=1 ;;
		esac
	done
	[ "$hit" -eq 1 ] || fail "%files has $p, which is not installed"
done

# The unit must start what was installed, with the config that was.
unit=$(for f in $installed; do
	case $f in */socketd.service) echo "$f" ;; esac
done)
if [ -n "$unit" ]; then
	# shellcheck disable=SC2046 # split into words (no globbing: set -f)
	set -- $(sed -n 's/^ExecStart=//p' "$WORK/root$unit")
	if [ -x "$WORK/root$1" ] && [ "${2:-}" = -c ] &&
	    [ -f "$WORK/root${3:-/nonexistent}" ]; then
		echo "ok: $unit: ExecStart=$*"
	else
		fail "$unit: ExecStart=$* does not name the installed" \
		    "daemon and configuration file"
	fi
fi

if [ "$FAILED" -gt 0 ]; then
	echo "$FAILED check(s) failed" >&2
	exit 1
fi
echo "all checks passed"
