package manifest

import (
	"strings"
	"testing"
)

func TestDecodeSkipsEmptyDocumentsAndNamesBadOnes(t *testing.T) {
	in := `# only a comment
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: order
---
---
apiVersion: v1
kind: Service
metadata:
  name: order
spec:
  prots: []
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: STRIKT
`
	s, err := Decode([]byte(in))
	if len(s.ServiceAccounts) != 1 {
		t.Errorf("decoded %d ServiceAccounts, want 1", len(s.ServiceAccounts))
	}
	if err == nil {
		t.Fatal("want errors for the Service and the PeerAuthentication")
	}
	for _, want := range []string{"(Service order)", `"prots"`, "(PeerAuthentication default)", "STRIKT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestDecodeIstioSpec(t *testing.T) {
	in := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: order
  namespace: eventshop
spec:
  host: order
  subsets:
    - name: v2
      labels:
        version: v2
`
	s, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	dr := s.DestinationRules[0]
	if dr.Namespace != "eventshop" || dr.Spec.GetHost() != "order" || dr.Spec.GetSubsets()[0].GetLabels()["version"] != "v2" {
		t.Errorf("decoded %+v", dr)
	}
}

func TestWeightsSum(t *testing.T) {
	tests := []struct {
		name    string
		weights []int32
		ok      bool
	}{
		{"single, no weight", []int32{0}, true},
		{"single, 100", []int32{100}, true},
		{"single, 50", []int32{50}, false},
		{"split", []int32{90, 10}, true},
		{"all on the second", []int32{0, 100}, true},
		{"short", []int32{90, 5}, false},
		{"negative", []int32{110, -10}, false},
	}
	for _, tt := range tests {
		var route []w
		for _, x := range tt.weights {
			route = append(route, w(x))
		}
		if err := weightsSum(route); (err == nil) != tt.ok {
			t.Errorf("%s: weightsSum(%v) = %v", tt.name, tt.weights, err)
		}
	}
}

type w int32

func (x w) GetWeight() int32 { return int32(x) }
