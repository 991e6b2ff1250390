#!/bin/bash
# Build the Debian package of this source tree.
#
#   packaging/build-deb.sh [--source] OUTDIR
#
# Debian wants debian/ at the top of the source tree, and ours lives in
# packaging/debian, so this copies the tree (the files git tracks or would
# track: build directories and other ignored files stay out; outside a git
# checkout, everything but build*/ and .git) into a temporary directory,
# puts packaging/debian there as debian/, runs dpkg-buildpackage -us -uc -b
# and copies the results (.deb, .changes, .buildinfo) into OUTDIR.
# --source also builds the source package (3.0 (quilt): the .orig.tar.gz is
# made from the same copy, without debian/).
#
# Needs dpkg-dev, debhelper and the Build-Depends of packaging/debian/control
# (dpkg-buildpackage names any that are missing).  DEB_BUILD_OPTIONS is
# passed on: DEB_BUILD_OPTIONS=nocheck skips the tests.
set -euo pipefail

usage() {
	echo "usage: $0 [--source] OUTDIR" >&2
	exit 2
}

source_too=0
if [ "${1:-}" = "--source" ]; then
	source_too=1
	shift
fi
[ $# -eq 1 ] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)

# The system's tools only, as a Debian build machine has: a python3 from
# pyenv or a venv first in PATH lacks the modules pybuild needs.
SYSPATH=/usr/sbin:/usr/bin:/sbin:/bin

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
upstream=${version%-*}
work=$(mktemp -d "${TMPDIR:-/tmp}/socketd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/socketd-$upstream
mkdir "$src"

# OUTDIR inside the tree (packaging/build-deb.sh out) stays out of the copy.
case $out/ in
"$top"/*) outrel=./${out#"$top"/} ;;
*) outrel=/nonexistent ;;
esac
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and untracked-but-not-ignored files that exist (a tracked
	# file deleted in the work tree is left out).
	git -C "$top" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			case ./$f in "$outrel"/*) continue ;; esac
			if [ -f "$top/$f" ] || [ -L "$top/$f" ]; then
				printf '%s\0' "$f"
			fi
		done |
		tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
else
	tar -C "$top" --exclude=./.git --exclude='./build*' \
		--exclude="$outrel" -cf - . | tar -C "$src" -xf -
fi
if [ -e "$src/debian" ]; then
	echo "$0: the source tree already has a debian/ at its top" >&2
	exit 1
fi

if [ "$source_too" -eq 1 ]; then
	tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner \
		-czf "$work/socketd_$upstream.orig.tar.gz" "socketd-$upstream"
fi
cp -a "$top/packaging/debian" "$src/debian"

echo "$0: building socketd $version in $src"
if [ "$source_too" -eq 1 ]; then
	(cd "$src" && PATH=$SYSPATH dpkg-buildpackage -us -uc)
else
	(cd "$src" && PATH=$SYSPATH dpkg-buildpackage -us -uc -b)
fi

shopt -s nullglob
# Every binary package of the source (socketd, libsocketd1, -dev, dbgsym).
results=("$work"/*_"$version"[._]* "$work"/socketd_"$upstream".orig.tar.*)
cp -a "${results[@]}" "$out/"
for f in "${results[@]}"; do
	echo "$out/$(basename "$f")"
done
