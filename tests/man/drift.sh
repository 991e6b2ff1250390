#!/bin/sh
# drift.sh MANDIR KEYS SOCKETD SOCKETD_CLI: the manual pages against the
# code.
#
#   socketd.conf.5  every setting KEYS prints (cfg_key_at(): dotted paths,
#                   groups included) has an entry ".It Ic KEY ...", and
#                   every ".It Ic" entry is a setting (nothing documented
#                   that the loader would reject as unknown).
#   socketd.8       every option in "socketd --help" has an ".It" entry
#                   with "Fl X" (short) or "Fl \-long" (long).
#   socketd-cli.1   every option in "socketd-cli --help" has an ".It Fl"
#                   entry before the ".Ss" line naming bench, every option
#                   in "socketd-cli bench --help" one between that line and
#                   the next .Sh/.Ss (so the two meanings of -t are both
#                   documented, each in its place), and every command in
#                   the help's "Commands:" list has an ".It Cm NAME" entry.
#                   Without a bench command the bench part is skipped.
#
# Options are taken from the option column of the help text: lines that
# start with blanks and a dash, words up to the first that is not an
# option ("-c, --config FILE" gives -c and --config).
set -eu

if [ $# -ne 4 ]; then
	echo "usage: $0 MANDIR KEYS SOCKETD SOCKETD_CLI" >&2
	exit 2
fi
mandir=$1
keys=$2
socketd=$3
cli=$4

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

failed=0
fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}

for page in socketd.8 socketd.conf.5 socketd-cli.1; do
	if [ ! -f "$mandir/$page" ]; then
		echo "FAIL: $mandir/$page is missing"
		exit 1
	fi
done

# The options in a help text, one per line: -c, --config, ...
help_options() {
	awk '$1 ~ /^-/ {
		for (i = 1; i <= NF; i++) {
			t = $i
			sub(/,$/, "", t)
			sub(/=.*/, "", t)
			if (t !~ /^--?[A-Za-z0-9]/)
				break
			print t
		}
	}' "$1"
}

# The flags of a page's ".It" lines, as written after Fl, "\-" read as
# "-": "c", "-config", ...
page_flags() {
	awk '/^\.It[ \t]/ {
		for (i = 2; i < NF; i++)
			if ($i == "Fl") {
				t = $(i + 1)
				gsub(/\\-/, "-", t)
				gsub(/\\&/, "", t)
				print t
			}
	}' "$1"
}

# check_options HELP PAGE_PART WHAT: every option of HELP among the flags
# of PAGE_PART.
check_options() {
	help_options "$1" >"$tmp/opts"
	if [ ! -s "$tmp/opts" ]; then
		fail "$3: no options found in its --help output (format changed?)"
		return
	fi
	page_flags "$2" >"$tmp/flags"
	n=0
	while IFS= read -r opt; do
		n=$((n + 1))
		want=${opt#-}
		if ! grep -qxF -e "$want" "$tmp/flags"; then
			case $opt in
			--*) form=".It ... Fl \\$want" ;;
			*) form=".It Fl $want" ;;
			esac
			fail "$3: option $opt is not documented (no '$form' entry)"
		fi
	done <"$tmp/opts"
	echo "checked $n option(s): $3"
}

# --- socketd.conf.5 against the configuration loader ---------------------
conf=$mandir/socketd.conf.5
"$keys" >"$tmp/keys"
if [ ! -s "$tmp/keys" ]; then
	fail "$keys printed no settings"
fi
awk '/^\.It[ \t]/ && ($2 == "Ic" || $2 == "Cm") { print $3 }' "$conf" \
    >"$tmp/entries"
n=0
while IFS= read -r key; do
	n=$((n + 1))
	if ! grep -qxF -e "$key" "$tmp/entries"; then
		fail "socketd.conf.5: setting $key is not documented" \
		    "(no '.It Ic $key ...' entry)"
	fi
done <"$tmp/keys"
echo "checked $n setting(s): socketd.conf.5"
awk '/^\.It[ \t]/ && $2 == "Ic" { print $3 }' "$conf" |
    while IFS= read -r entry; do
	    if ! grep -qxF -e "$entry" "$tmp/keys"; then
		    echo "$entry"
	    fi
    done >"$tmp/unknown"
while IFS= read -r entry; do
	fail "socketd.conf.5: '.It Ic $entry' documents a setting the" \
	    "loader does not accept"
done <"$tmp/unknown"

# --- socketd.8 against socketd --help ------------------------------------
"$socketd" --help >"$tmp/socketd.help"
check_options "$tmp/socketd.help" "$mandir/socketd.8" "socketd.8 (socketd)"

# --- socketd-cli.1 against socketd-cli --help and bench --help -----------
clipage=$mandir/socketd-cli.1
"$cli" --help >"$tmp/cli.help"
awk '/^\.Ss[ \t].*bench/ { exit } { print }' "$clipage" >"$tmp/cli.global"
awk '/^\.Ss[ \t].*bench/ { on = 1; print; next }
    on && /^\.S[hs][ \t]/ { exit }
    on { print }' "$clipage" >"$tmp/cli.bench"
check_options "$tmp/cli.help" "$tmp/cli.global" \
    "socketd-cli.1 (global options, before the bench .Ss)"

awk '/^Commands:/ { on = 1; next }
    on && NF == 0 { exit }
    on { print $1 }' "$tmp/cli.help" >"$tmp/commands"
if [ ! -s "$tmp/commands" ]; then
	fail "socketd-cli --help lists no commands (format changed?)"
fi
awk '/^\.It[ \t]/ && $2 == "Cm" { print $3 }' "$clipage" >"$tmp/cmds"
n=0
while IFS= read -r cmd; do
	n=$((n + 1))
	if ! grep -qxF -e "$cmd" "$tmp/cmds"; then
		fail "socketd-cli.1: command $cmd is not documented" \
		    "(no '.It Cm $cmd' entry)"
	fi
done <"$tmp/commands"
echo "checked $n command(s): socketd-cli.1"

if grep -qx 'bench' "$tmp/commands"; then
	rc=0
	"$cli" bench --help >"$tmp/bench.help" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "socketd-cli bench --help exited $rc"
	elif [ ! -s "$tmp/cli.bench" ]; then
		fail "socketd-cli.1: no '.Ss' subsection naming bench for the" \
		    "bench options"
	else
		check_options "$tmp/bench.help" "$tmp/cli.bench" \
		    "socketd-cli.1 (bench options, in the bench .Ss)"
	fi
else
	echo "no bench command in socketd-cli --help: bench options not checked"
fi

if [ "$failed" -ne 0 ]; then
	echo "$failed problem(s): update the manual pages in $mandir"
	exit 1
fi
echo "ok: the manual pages match the code"
