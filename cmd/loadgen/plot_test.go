package main

import "testing"

func TestParseSweepReadsEveryMetricOfEachBuyersCount(t *testing.T) {
	out := `goos: linux
BenchmarkSagaEmbedded/buyers=1-2         	    1000	        24.31 cpu-ms/order	     33843 js-publish/s	        26.30 p50-ms	        40.63 p99-ms	        39.68 sagas/s
BenchmarkSagaEmbedded/buyers=64-2        	    1000	        57.08 cpu-ms/order	     38596 js-publish/s	      2085 p50-ms	      3307 p99-ms	        30.14 sagas/s
    bench_test.go:60: PlaceOrder: bulkhead full
BenchmarkOther-2 	 10 	 5 ns/op
PASS
`
	got := parseSweep(out)
	if len(got) != 2 {
		t.Fatalf("parsed %d buyers counts, want 2: %v", len(got), got)
	}
	if got[64]["sagas/s"] != 30.14 || got[64]["p99-ms"] != 3307 || got[1]["cpu-ms/order"] != 24.31 {
		t.Fatalf("parsed %v", got)
	}
}
