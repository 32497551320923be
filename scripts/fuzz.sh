#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 5000x, five thousand inputs: the
# short run `make test` does; `make fuzz` runs them for a minute). The short run counts
# inputs instead of seconds: Go 1.26's fuzz coordinator can fail a time-bounded run
# with a bare "context deadline exceeded" when the machine is busy (golang/go#75804),
# and a count has no deadline to race. A crasher is saved under the package's
# testdata/fuzz/ by go test: commit it, and it runs as a regression test from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5000x}

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
