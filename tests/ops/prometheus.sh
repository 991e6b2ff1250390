#!/bin/sh
# A real Prometheus (Debian's) scrapes a running socketd's /metrics: the
# target is up, and a query through Prometheus's HTTP API returns a
# request counter that moved when requests were made.
# usage: prometheus.sh SOCKETD SOCKETD_CLI SOURCE_DIR
set -u
SOCKETD=$1
CLI=$2
SRC=$3
. "$SRC/tests/ops/lib.sh"
need prometheus prometheus
need python3 python3

set -- $(free_ports 3)
PORT=$1 ADMIN=$2 PROM=$3

cat >"$TMP/socketd.conf" <<CONF
listen = [ "127.0.0.1:$PORT" ];
admin: { listen = [ "127.0.0.1:$ADMIN" ]; agent_listen = [ ]; };
log: { level = "info"; };
CONF
"$SOCKETD" -c "$TMP/socketd.conf" >"$TMP/socketd.log" 2>&1 &
PIDS="$PIDS $!"
wait_until 5 grep -q "ready:" "$TMP/socketd.log" || die "socketd did not start"

cat >"$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: socketd
    static_configs:
      - targets: [ "127.0.0.1:$ADMIN" ]
YML
prometheus --config.file="$TMP/prometheus.yml" \
    --storage.tsdb.path="$TMP/data" \
    --web.listen-address="127.0.0.1:$PROM" >"$TMP/prometheus.log" 2>&1 &
PIDS="$PIDS $!"

# api PATH: GET Prometheus's HTTP API; prints what the python says.
api() {
	python3 - "http://127.0.0.1:$PROM$1" "$2" <<'PY'
import json, sys, urllib.request
try:
    d = json.load(urllib.request.urlopen(sys.argv[1], timeout=2))
except Exception as e:
    print("error", e)
    sys.exit(0)
if sys.argv[2] == "health":
    for t in d["data"]["activeTargets"]:
        print(t["health"], t.get("lastError", ""))
else:
    r = d["data"]["result"]
    print(r[0]["value"][1] if r else "none")
PY
}
target_up() {
	api /api/v1/targets health | grep -q "^up"
}
wait_until 30 target_up ||
	die "the socketd target never became up: $(api /api/v1/targets health)"
echo "prometheus: target 127.0.0.1:$ADMIN up"

Q='/api/v1/query?query=socketd_requests_total%7Bopcode%3D%22ping%22%2Cstatus%3D%22ok%22%7D'
v0=$(api "$Q" value)
"$CLI" -p "$PORT" bench -n 5000 -c 2 --json >"$TMP/bench.json" 2>&1 ||
	die "bench failed: $(cat "$TMP/bench.json")"
moved() {
	v=$(api "$Q" value)
	[ "$v" != none ] && [ "$v" != "$v0" ] &&
	    python3 -c "import sys; sys.exit(0 if float('$v') - float('${v0#none}' or 0) >= 5000 else 1)" 2>/dev/null
}
wait_until 15 moved || die "the counter did not move: before $v0, now $(api "$Q" value)"
echo "socketd_requests_total{opcode=\"ping\",status=\"ok\"} through Prometheus: $v0 -> $(api "$Q" value)"
echo "PASS"
