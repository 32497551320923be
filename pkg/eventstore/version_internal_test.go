package eventstore

import "testing"

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"2.11.0", true}, {"2.15.2", true}, {"3.0.0", true}, {"2.12.0-beta.1", true},
		{"2.10.29", false}, {"2.9.10", false}, {"1.99.99", false}, {"", false},
	}
	for _, tt := range tests {
		if got := versionAtLeast(tt.v, MinServerVersion); got != tt.want {
			t.Errorf("versionAtLeast(%q, %s) = %v, want %v", tt.v, MinServerVersion, got, tt.want)
		}
	}
}
