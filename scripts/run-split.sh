#!/usr/bin/env bash
# Runs every service as its own process on loopback, the way Kubernetes runs them:
# one NATS JetStream server (or a cluster of three with SPLIT_NATS_NODES=3, streams and
# buckets at three replicas), one PostgreSQL database (fresh per start), the dev OIDC
# issuer, catalog, cart, payment, inventory, shipping, order and the gateway.
#
#   scripts/run-split.sh            start everything, stop it all on Ctrl-C
#   scripts/run-split.sh start      start everything in the background and return
#   scripts/run-split.sh restart S [FLAGS]
#                                   kill -9 service S and start it again (chaos), with
#                                   FLAGS added for this start only (faults, e.g.
#                                   restart payment -provider-fail-rate 1); S may
#                                   be nats (one node), nats-1, nats-2, nats-3 (a
#                                   cluster's nodes) or postgres (restarts the
#                                   PostgreSQL server: SPLIT_PG_RESTART_CMD)
#   scripts/run-split.sh stop       stop everything started and drop the run's
#                                   database (SPLIT_KEEP_DB=1 keeps it; start
#                                   drops the previous run's the same way)
#   scripts/run-split.sh env        print the gateway, issuer and database of the run
#
# State (binaries, pids, logs, NATS store) lives in SPLIT_DIR (default bin/split).
set -euo pipefail
cd "$(dirname "$0")/.."

SPLIT_DIR=${SPLIT_DIR:-bin/split}
PG_URL=${SPLIT_PG_URL:-postgres://postgres@127.0.0.1:5432}
NATS_PORT=${SPLIT_NATS_PORT:-4233} # node i of a cluster: NATS_PORT + i - 1
NATS_MONITOR_PORT=${SPLIT_NATS_MONITOR_PORT:-8233} # NATS monitoring: /jsz?consumers=true
NATS_CLUSTER_PORT=${SPLIT_NATS_CLUSTER_PORT:-6233}
# Set at start; restart and stop use what the running shop was started with (a
# variable written before one command reaches that command only).
NATS_NODES=${SPLIT_NATS_NODES:-1}
if [[ ${1:-} != start && ${1:-run} != run && -z ${SPLIT_NATS_NODES:-} && -f $SPLIT_DIR/nats-nodes ]]; then
	NATS_NODES=$(cat "$SPLIT_DIR/nats-nodes")
fi
[[ $NATS_NODES == 1 || $NATS_NODES == 3 ]] || { echo "run-split: SPLIT_NATS_NODES is 1 or 3" >&2; exit 2; }
# How to restart the PostgreSQL server (chaos); the default is Debian's cluster tool.
PG_RESTART_CMD=${SPLIT_PG_RESTART_CMD:-pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql 2>/dev/null | sort -V | tail -1) main restart}
BASE_PORT=${SPLIT_BASE_PORT:-9500} # issuer; services on the next ports
GATEWAY_ADDR=${SPLIT_GATEWAY_ADDR:-127.0.0.1:8090}
SERVICES=(catalog cart payment inventory shipping order gateway)

mkdir -p "$SPLIT_DIR"
SPLIT_DIR=$(cd "$SPLIT_DIR" && pwd)
BIN=$SPLIT_DIR/bin
NATS_URL=nats://127.0.0.1:$NATS_PORT
REPLICAS=1
NATS_PROCS=(nats)
if [[ $NATS_NODES == 3 ]]; then
	NATS_URL=nats://127.0.0.1:$NATS_PORT,nats://127.0.0.1:$((NATS_PORT + 1)),nats://127.0.0.1:$((NATS_PORT + 2))
	REPLICAS=3
	NATS_PROCS=(nats-1 nats-2 nats-3)
fi
NATS_SERVER=${SPLIT_NATS_SERVER:-$(go env GOPATH)/bin/nats-server}
ISSUER_ADDR=127.0.0.1:$BASE_PORT
addr() { # gRPC address of a service
	local i=1
	for s in catalog cart order payment inventory shipping; do
		[[ $s == "$1" ]] && { echo "127.0.0.1:$((BASE_PORT + i))"; return; }
		i=$((i + 1))
	done
}

build() {
	mkdir -p "$BIN"
	echo "run-split: building binaries into $BIN" >&2
	(cd cmd && go build -o "$BIN/devissuer" ./devissuer && go build -o "$BIN/shopd" ./shopd)
	for s in catalog cart order payment inventory shipping; do
		(cd "services/$s" && go build -o "$BIN/$s" "./cmd/$s")
	done
	(cd gateway && go build -o "$BIN/gateway" ./cmd/gateway)
	# A distribution's nats-server may be too old for the event store's batch direct gets
	# (2.11+) and multi-subject consumers (2.10+),
	# so the pinned one is installed into GOPATH/bin and used unless SPLIT_NATS_SERVER
	# names another.
	[[ -x $NATS_SERVER ]] || (cd / && GOWORK=off go install github.com/nats-io/nats-server/v2@v2.15.2)
}

# nats_config gives each service its own NATS identity (kept across starts) and writes
# the server's configuration, which admits only those identities, each with the
# permissions of its role (shopd nats-auth).
nats_config() {
	"$BIN/shopd" nats-auth -dir "$SPLIT_DIR/nats-identities" -config "$SPLIT_DIR/nats-auth.conf" >/dev/null
	if [[ $NATS_NODES == 1 ]]; then
		cat >"$SPLIT_DIR/nats.conf" <<-EOF
			listen: 127.0.0.1:$NATS_PORT
			http: 127.0.0.1:$NATS_MONITOR_PORT
			jetstream { store_dir: "$SPLIT_DIR/nats" }
			include nats-auth.conf
		EOF
		return
	fi
	local i routes=""
	for i in 1 2 3; do routes+="nats://127.0.0.1:$((NATS_CLUSTER_PORT + i - 1)), "; done
	for i in 1 2 3; do
		cat >"$SPLIT_DIR/nats-$i.conf" <<-EOF
			server_name: nats-$i
			listen: 127.0.0.1:$((NATS_PORT + i - 1))
			http: 127.0.0.1:$((NATS_MONITOR_PORT + i - 1))
			jetstream { store_dir: "$SPLIT_DIR/nats/$i" }
			cluster {
			  name: eventshop
			  listen: 127.0.0.1:$((NATS_CLUSTER_PORT + i - 1))
			  routes: [ ${routes%, } ]
			}
			include nats-auth.conf
		EOF
	done
}

# wait_jetstream waits (bounded) until every NATS node reports JetStream ready, so a
# cluster has its meta leader before the services declare their streams.
wait_jetstream() {
	local i n port
	for ((n = 0; n < NATS_NODES; n++)); do
		port=$((NATS_MONITOR_PORT + n))
		for i in $(seq 1 150); do
			# The braces keep 2>/dev/null to this exec: on a bare exec it would stay
			# on the script's stderr, silencing every message after it.
			if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
				printf 'GET /healthz?js-enabled-only=true HTTP/1.0\r\n\r\n' >&3
				if head -1 <&3 | grep -q ' 200 '; then exec 3<&-; break; fi
				exec 3<&-
			fi
			sleep 0.2
		done
	done
}

# args prints the command line of one process.
args() {
	local dsn issuer="http://$ISSUER_ADDR" common
	dsn=$(cat "$SPLIT_DIR/dsn")
	common="-nats-url $NATS_URL -nats-nkey $SPLIT_DIR/nats-identities/$1.nk -oidc-issuer $issuer -log-level WARN"
	case $1 in
	nats) echo "$NATS_SERVER -c $SPLIT_DIR/nats.conf" ;;
	nats-[123]) echo "$NATS_SERVER -c $SPLIT_DIR/$1.conf" ;;
	devissuer) echo "$BIN/devissuer -addr $ISSUER_ADDR -key-file $SPLIT_DIR/issuer-key.pem -storefront-redirect http://$GATEWAY_ADDR/auth/callback,http://localhost:${GATEWAY_ADDR##*:}/auth/callback" ;;
	catalog) echo "$BIN/catalog -grpc-addr $(addr catalog) -oidc-issuer $issuer -log-level WARN" ;;
	cart) echo "$BIN/cart -grpc-addr $(addr cart) -catalog-addr $(addr catalog) $common -stream-replicas $REPLICAS" ;;
	payment) echo "$BIN/payment -grpc-addr $(addr payment) -read-dsn $dsn $common -stream-replicas $REPLICAS" ;;
	inventory) echo "$BIN/inventory -grpc-addr $(addr inventory) -catalog-addr $(addr catalog) -read-dsn $dsn $common -stream-replicas $REPLICAS" ;;
	shipping) echo "$BIN/shipping -grpc-addr $(addr shipping) -catalog-addr $(addr catalog) -read-dsn $dsn $common -stream-replicas $REPLICAS" ;;
	order) echo "$BIN/order -grpc-addr $(addr order) -catalog-addr $(addr catalog) -shipping-addr $(addr shipping) -read-dsn $dsn $common -stream-replicas $REPLICAS ${SPLIT_ORDER_FLAGS:-}" ;;
	gateway) echo "$BIN/gateway -http-addr $GATEWAY_ADDR -oidc-issuer $issuer -oidc-client-secret storefront-secret \
-catalog-addr $(addr catalog) -cart-addr $(addr cart) -order-addr $(addr order) -payment-addr $(addr payment) \
-inventory-addr $(addr inventory) -shipping-addr $(addr shipping) -nats-url $NATS_URL -nats-nkey $SPLIT_DIR/nats-identities/gateway.nk \
-stream-replicas $REPLICAS -log-level WARN ${SPLIT_GATEWAY_FLAGS:-}" ;;
	*) echo "run-split: unknown process $1" >&2; return 1 ;;
	esac
}

launch() {
	local cmd
	cmd="$(args "$1") ${*:2}"
	# shellcheck disable=SC2086
	nohup $cmd >>"$SPLIT_DIR/$1.log" 2>&1 &
	echo $! >"$SPLIT_DIR/$1.pid"
}

# wait_port waits (bounded) until something listens on host:port. A service on a
# fresh 3-node cluster may wait several seconds for the cluster's first leader
# before it can declare its streams and buckets and listen, longer on a busy machine.
wait_port() {
	local hp=$1 i
	for i in $(seq 1 300); do
		(exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "run-split: nothing listens on $hp; see $SPLIT_DIR/*.log" >&2
	return 1
}

port_of() {
	case $1 in
	nats) echo "127.0.0.1:$NATS_PORT" ;;
	nats-[123]) echo "127.0.0.1:$((NATS_PORT + ${1#nats-} - 1))" ;;
	devissuer) echo "$ISSUER_ADDR" ;;
	gateway) echo "$GATEWAY_ADDR" ;;
	*) addr "$1" ;;
	esac
}

start() {
	stop_all quiet
	build
	local db="eventshop_split_$(date +%s)"
	psql "$PG_URL/postgres" -q -c "CREATE DATABASE $db" >/dev/null
	echo "$PG_URL/$db?sslmode=disable" >"$SPLIT_DIR/dsn"
	rm -rf "$SPLIT_DIR/nats" "$SPLIT_DIR"/*.log
	echo "$NATS_NODES" >"$SPLIT_DIR/nats-nodes"
	nats_config
	for p in "${NATS_PROCS[@]}"; do
		launch "$p"
	done
	for p in "${NATS_PROCS[@]}"; do
		wait_port "$(port_of "$p")"
	done
	wait_jetstream
	for p in devissuer "${SERVICES[@]}"; do
		launch "$p"
		wait_port "$(port_of "$p")"
	done
	print_env
}

print_env() {
	echo "SPLIT_GATEWAY=http://$GATEWAY_ADDR"
	echo "SPLIT_ISSUER=http://$ISSUER_ADDR"
	echo "SPLIT_DSN=$(cat "$SPLIT_DIR/dsn")"
	echo "SPLIT_NATS=$NATS_URL"
	echo "SPLIT_NATS_OPERATOR_NKEY=$SPLIT_DIR/nats-identities/operator.nk"
}

restart() {
	local s=$1 pid
	shift
	if [[ $s == postgres ]]; then
		# shellcheck disable=SC2086
		$PG_RESTART_CMD
		wait_port "${PG_URL##*@}"
		return
	fi
	[[ -f $SPLIT_DIR/$s.pid ]] || { echo "run-split: $s is not running" >&2; return 1; }
	pid=$(cat "$SPLIT_DIR/$s.pid")
	kill -9 "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	launch "$s" "$@"
	wait_port "$(port_of "$s")"
	[[ $s != nats* ]] || wait_jetstream
}

stop_all() {
	local pids=() pid i
	for p in gateway order shipping inventory payment cart catalog devissuer nats nats-1 nats-2 nats-3; do
		if [[ -f $SPLIT_DIR/$p.pid ]]; then
			pid=$(cat "$SPLIT_DIR/$p.pid")
			kill "$pid" 2>/dev/null && pids+=("$pid")
			rm -f "$SPLIT_DIR/$p.pid"
		fi
	done
	# Until they are gone (bounded): a start right after would otherwise find the
	# old processes still draining on its ports.
	for pid in "${pids[@]}"; do
		for i in $(seq 1 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
	local dropped=""
	if [[ -f $SPLIT_DIR/dsn && -z ${SPLIT_KEEP_DB:-} ]]; then
		local db
		db=$(sed -E 's|.*/([^/?]+)(\?.*)?$|\1|' "$SPLIT_DIR/dsn")
		if psql "$PG_URL/postgres" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; then
			rm -f "$SPLIT_DIR/dsn"
			dropped="; dropped database $db (SPLIT_KEEP_DB=1 keeps it)"
		fi
	fi
	[[ ${1:-} == quiet ]] || echo "run-split: stopped$dropped" >&2
}

case ${1:-run} in
run)
	start
	trap stop_all INT TERM
	echo "run-split: running; Ctrl-C stops every process" >&2
	wait
	;;
start) start ;;
restart) restart "${@:2}" ;;
stop) stop_all ;;
env) print_env ;;
*) sed -n '2,20p' "$0"; exit 2 ;;
esac
