#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 3s: the short run `make test`
# does; `make fuzz` runs them for a minute). A crasher is saved under the package's
# testdata/fuzz/ by go test: commit it, and it runs as a regression test from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}

# package directory  fuzz target
targets=(
	"pkg/messaging FuzzCloudEventsHeaders"
	"services/order/projection FuzzOrderPageToken"
	"services/catalog/domain FuzzCatalogPageToken"
	"services/order/app FuzzOrderEventCodec"
	"gateway FuzzAPIWriteBodies"
)
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	echo "fuzz $name ($dir) for $FUZZTIME"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir"
done
