#!/usr/bin/env bash
# Runs shopd (the whole shop in one process, as `make run` does) in the background,
# so that it can be killed with SIGKILL and started again on the same data: the
# whole-process crash of the chaos scenario, e.g.
#
#   scripts/run-shopd.sh start
#   go run ./cmd/loadgen -scenario chaos -target http://127.0.0.1:8080 -data-dir bin/shopd/data \
#     -restart-cmd "scripts/run-shopd.sh restart" -chaos-services shopd -chaos-faults=false
#
#   scripts/run-shopd.sh start          build shopd, start it, return once it is ready
#   scripts/run-shopd.sh restart [shopd] [FLAGS]
#                                       kill -9 shopd and start it again on the same data
#                                       directory, with FLAGS added for this start only
#   scripts/run-shopd.sh stop           stop it
#
# State (binary, pid, log) lives in SHOPD_DIR (default bin/shopd), the shop's data in
# SHOPD_DATA_DIR (default SHOPD_DIR/data, kept across restarts, wiped by start);
# SHOPD_FLAGS adds shopd flags to every start (default: the gateway's rate limits
# lifted, since a load generator is one address with few users).
set -euo pipefail
cd "$(dirname "$0")/.."

SHOPD_DIR=${SHOPD_DIR:-bin/shopd}
mkdir -p "$SHOPD_DIR"
SHOPD_DIR=$(cd "$SHOPD_DIR" && pwd)
DATA_DIR=${SHOPD_DATA_DIR:-$SHOPD_DIR/data}
FLAGS=${SHOPD_FLAGS:--gateway-rate-ip 1e9 -gateway-rate-ip-burst 1000000000 -gateway-rate-user 1e9 -gateway-rate-user-burst 1000000000}

launch() {
	local seen
	seen=$(grep -c 'shopd: ready' "$SHOPD_DIR/shopd.log" 2>/dev/null || true)
	# shellcheck disable=SC2086
	nohup "$SHOPD_DIR/shopd" -data-dir "$DATA_DIR" $FLAGS "$@" >>"$SHOPD_DIR/shopd.log" 2>&1 &
	echo $! >"$SHOPD_DIR/shopd.pid"
	for _ in $(seq 1 600); do
		if (($(grep -c 'shopd: ready' "$SHOPD_DIR/shopd.log" || true) > ${seen:-0})); then
			return 0
		fi
		kill -0 "$(cat "$SHOPD_DIR/shopd.pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "run-shopd: shopd did not get ready; see $SHOPD_DIR/shopd.log" >&2
	return 1
}

stop() {
	if [[ -f $SHOPD_DIR/shopd.pid ]]; then
		kill "$(cat "$SHOPD_DIR/shopd.pid")" 2>/dev/null || true
		rm -f "$SHOPD_DIR/shopd.pid"
	fi
}

case ${1:-} in
start)
	stop
	(cd cmd && go build -o "$SHOPD_DIR/shopd" ./shopd)
	rm -rf "$DATA_DIR" "$SHOPD_DIR/shopd.log"
	launch
	grep "shopd: ready" "$SHOPD_DIR/shopd.log" | tail -1
	;;
restart)
	shift
	[[ ${1:-} != shopd ]] || shift
	[[ -f $SHOPD_DIR/shopd.pid ]] || { echo "run-shopd: shopd is not running" >&2; exit 1; }
	pid=$(cat "$SHOPD_DIR/shopd.pid")
	kill -9 "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	launch "$@"
	;;
stop) stop ;;
*) sed -n '2,19p' "$0"; exit 2 ;;
esac
