#!/usr/bin/env bash
# Builds and runs Jaeger v2 locally: OTLP in on 127.0.0.1:4317/4318, in-memory
# storage, query API (and UI, when built with its assets) on 127.0.0.1:16686.
#
#   scripts/jaeger.sh build   build once, print the binary's path
#   scripts/jaeger.sh run     run in the foreground (Ctrl-C stops it)
#   scripts/jaeger.sh start   run in the background, wait until the query API answers
#   scripts/jaeger.sh stop    stop the background instance
#
# `go install` refuses the jaeger module because its go.mod has replace directives,
# so the module is downloaded through the Go proxy, copied to a writable directory
# and built there. The binary is cached in GOBIN under a name carrying the version.
set -euo pipefail

JAEGER_VERSION=${JAEGER_VERSION:-v1.76.0}
GOBIN=${GOBIN:-$(go env GOPATH)/bin}
BIN="$GOBIN/jaeger-$JAEGER_VERSION"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG=${JAEGER_CONFIG:-$ROOT/scripts/jaeger.yaml}
STATE_DIR=${JAEGER_STATE_DIR:-$ROOT/data/jaeger}
PIDFILE="$STATE_DIR/jaeger.pid"
LOGFILE="$STATE_DIR/jaeger.log"
QUERY_URL="http://127.0.0.1:${JAEGER_QUERY_PORT:-16686}"

build() {
	if [[ -x "$BIN" ]]; then
		echo "$BIN"
		return
	fi
	mkdir -p "$GOBIN"
	local dir
	dir=$(cd / && GOWORK=off go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [[ -z "$dir" ]]; then
		echo "jaeger: could not download github.com/jaegertracing/jaeger@$JAEGER_VERSION" >&2
		exit 1
	fi
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	# The module cache is read-only; the build wants a tree it may write go.sum into.
	cp -R "$dir/." "$tmp/src"
	chmod -R u+w "$tmp/src"
	echo "jaeger: building $JAEGER_VERSION (first time only, takes a while)" >&2
	local start=$SECONDS
	(cd "$tmp/src" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
		go build -trimpath -o "$BIN.tmp" ./cmd/jaeger)
	mv "$BIN.tmp" "$BIN"
	echo "jaeger: built $BIN in $((SECONDS - start))s" >&2
	echo "$BIN"
}

ready() {
	curl -fsS -o /dev/null "$QUERY_URL/api/services" 2>/dev/null
}

case "${1:-run}" in
build)
	build
	;;
run)
	build >/dev/null
	exec "$BIN" --config "$CONFIG"
	;;
start)
	build >/dev/null
	mkdir -p "$STATE_DIR"
	if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && ready; then
		echo "$QUERY_URL"
		exit 0
	fi
	"$BIN" --config "$CONFIG" >"$LOGFILE" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 120); do
		if ready; then
			echo "$QUERY_URL"
			exit 0
		fi
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
			echo "jaeger: exited during start-up; log follows" >&2
			cat "$LOGFILE" >&2
			exit 1
		fi
		sleep 0.5
	done
	echo "jaeger: query API at $QUERY_URL did not answer within 60s; see $LOGFILE" >&2
	exit 1
	;;
stop)
	if [[ -f "$PIDFILE" ]]; then
		kill "$(cat "$PIDFILE")" 2>/dev/null || true
		rm -f "$PIDFILE"
	fi
	;;
*)
	echo "usage: $0 build|run|start|stop" >&2
	exit 2
	;;
esac
