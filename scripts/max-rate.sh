#!/usr/bin/env bash
# Finds the highest steady order rate the in-process shop carries through the
# gateway (loadgen's open model) while PlaceOrder → final p99 stays within a bound.
#
#   scripts/max-rate.sh [LOADGEN_BINARY]
#
# It builds cmd/loadgen unless a binary is given (so an older build can be measured
# the same way), then runs `loadgen -scenario steady -rate R` for each R of RATES in
# turn, each for DURATION on a fresh in-process shop, and stops at the first rate that
# misses: p99 over P99_MS, fewer than 90 % of the offered orders completed per second,
# an order not final, or an audit violation (loadgen exits non-zero). Every run's JSON
# report is kept in OUT. The last line names the highest rate that held.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"10 20 40 60 80 120 160 240 320 480"}
DURATION=${DURATION:-15s}
P99_MS=${P99_MS:-250}
OUT=${OUT:-bin/max-rate}
mkdir -p "$OUT"

bin=${1:-}
if [[ -z $bin ]]; then
	bin=$OUT/loadgen
	(cd cmd && go build -o "../$bin" ./loadgen)
fi

best=0
for r in $RATES; do
	report=$OUT/rate-$r.json
	ok=1
	"$bin" -scenario steady -rate "$r" -duration "$DURATION" -orders 0 -mix ok=100 -final-wait 60s -json >"$report" 2>"$OUT/rate-$r.log" || ok=0
	read -r p99 thr < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["place_to_final"]["p99_ms"], 1), round(r["throughput_orders_per_s"], 1))' "$report" 2>/dev/null || echo "inf 0")
	printf 'rate %4s/s: completed %6s/s, place→final p99 %8s ms' "$r" "$thr" "$p99"
	if [[ $ok == 1 ]] && python3 -c 'import sys; p,t,r,b=map(float,sys.argv[1:]); sys.exit(0 if p<=b and t>=0.9*r else 1)' "$p99" "$thr" "$r" "$P99_MS"; then
		echo "  held"
		best=$r
	else
		echo "  missed"
		break
	fi
done
echo "highest rate with p99 <= ${P99_MS} ms: ${best}/s"
