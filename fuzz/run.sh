#!/bin/sh
# Run one libFuzzer target for a bounded time; fail if it finds a crash.
#
#   run.sh BINARY NAME SECONDS FUZZ_SRC_DIR WORK_DIR
#
# FUZZ_SECONDS in the environment overrides SECONDS.  The target reads
# FUZZ_SRC_DIR/corpus/NAME and FUZZ_SRC_DIR/regress/NAME and writes the
# inputs it finds to WORK_DIR/corpus-NAME (kept between runs, never in the
# source tree).  A crashing input goes to FUZZ_SRC_DIR/crashes-NAME/ (or
# $FUZZ_ARTIFACTS/crashes-NAME/): replay it with
#   BINARY FILE
# and, once the bug is fixed, move it to FUZZ_SRC_DIR/regress/NAME/ so the
# ordinary test suite (ctest -L fuzz-regress) keeps checking it.
# stdin is /dev/null: nothing here may wait on a terminal.
set -u

bin=$1 name=$2 secs=${FUZZ_SECONDS:-$3} src=$4 work=$5
art=${FUZZ_ARTIFACTS:-$src}/crashes-$name
corpus=$work/corpus-$name
log=$work/fuzz-$name.log

mkdir -p "$corpus" "$art" || exit 1
set -- -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/"
[ -f "$src/$name.dict" ] && set -- "$@" -dict="$src/$name.dict"
set -- "$@" "$corpus" "$src/corpus/$name"
[ -d "$src/regress/$name" ] && set -- "$@" "$src/regress/$name"

# Known leaks outside socketd, each with its reason in lsan.supp.
LSAN_OPTIONS=suppressions=$src/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}
export LSAN_OPTIONS

echo "fuzz $name: ${secs}s, log in $log"
"$bin" "$@" </dev/null >"$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
echo "fuzz $name: ${execs:-?} runs, ${rate:-?} exec/s, ${cov:-no coverage line}," \
    "corpus $(ls "$corpus" | wc -l) inputs"
if [ "$rc" -ne 0 ]; then
	tail -n 60 "$log"
	echo "fuzz $name: FAILED (exit $rc); inputs in $art:"
	ls -l "$art"
	echo "fuzz $name: fix the bug, then move the input to" \
	    "$src/regress/$name/"
	exit 1
fi
rmdir "$art" 2>/dev/null
exit 0
