#!/bin/sh
# Soak test (opt-in, not in make check): SOAK_SECONDS (600) of mixed load
# from socketd-cli bench against one fresh socketd, sampling its RSS and
# open descriptors every SAMPLE seconds (10).  It fails when, after the
# load, RSS grew by more than RSS_SLACK_KB (2048) over its value after the
# first full cycle of the mix (the allocator keeps what the 2,000-
# connection round took, so earlier samples are no baseline), or the
# descriptor count is not back to its idle value.
#
#   SOCKETD_BIN=build/daemon/socketd SOCKETD_CLI=build/client/socketd-cli \
#       bench/soak.sh
set -eu

BIN=${SOCKETD_BIN:-build/daemon/socketd}
CLI=${SOCKETD_CLI:-build/client/socketd-cli}
SECONDS_TOTAL=${SOAK_SECONDS:-600}
SAMPLE=${SAMPLE:-10}
RSS_SLACK_KB=${RSS_SLACK_KB:-2048}
WORKERS=${WORKERS:-2}

dir=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 17999)
cat > "$dir/socketd.conf" <<CONF
listen = [ "127.0.0.1:$port" ];
workers = $WORKERS;
max_connections = 20000;
timeouts: { idle = 0; };
log: { level = "warning"; };
admin: { listen = [ ]; agent_listen = [ ]; };
CONF
"$BIN" -c "$dir/socketd.conf" 2>"$dir/log" &
pid=$!
i=0
until "$CLI" -p "$port" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "socketd did not start"; exit 1; }
	sleep 0.1
done

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
idle_fds=$(fds)

# The mix: small and large echoes, pings at pipeline 1 and 16, many
# connections; each round 20 s, with reloads now and then.
round=0
start=$(date +%s)
rss0=""
echo "time_s rss_kb fds requests errors"
while [ $(( $(date +%s) - start )) -lt "$SECONDS_TOTAL" ]; do
	case $((round % 4)) in
	0) args="-c 50 -P 16 --op ping" ;;
	1) args="-c 200 -P 1 --op echo --size 64" ;;
	2) args="-c 20 -P 4 --op echo --size 65536" ;;
	3) args="-c 2000 -P 1 --op ping" ;;
	esac
	# shellcheck disable=SC2086
	"$CLI" -p "$port" bench -d "$SAMPLE" --warmup 0 $args --json \
	    > "$dir/bench.json" 2>&1 || { cat "$dir/bench.json"; exit 1; }
	[ $((round % 5)) -eq 4 ] && kill -HUP "$pid"
	req=$(grep -o '"requests":[0-9]*' "$dir/bench.json" | cut -d: -f2)
	err=$(grep -o '"errors":[0-9]*' "$dir/bench.json" | cut -d: -f2)
	r=$(rss)
	[ "$round" -eq 3 ] && rss0=$r
	echo "$(( $(date +%s) - start )) $r $(fds) $req $err"
	[ "$err" = 0 ] || { echo "bench reported $err errors"; exit 1; }
	round=$((round + 1))
done
sleep 3 # lingering closes end
rss1=$(rss)
end_fds=$(fds)
echo "rss after the first cycle ${rss0} KiB, at the end ${rss1} KiB;" \
    "descriptors idle ${idle_fds}, at the end ${end_fds}"
[ "$end_fds" -eq "$idle_fds" ] || { echo "FAIL: descriptors leaked"; exit 1; }
[ $((rss1 - rss0)) -le "$RSS_SLACK_KB" ] || { echo "FAIL: RSS grew"; exit 1; }
echo "soak: OK"
