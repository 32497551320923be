package catalogclient

import "testing"

func TestUnknownIDPicksTheNamedProduct(t *testing.T) {
	ids := []string{"colombia", "colombia-huila", "french-press"}
	tests := []struct{ msg, want string }{
		{`product "colombia-huila" not found`, "colombia-huila"},
		{`product "colombia" not found`, "colombia"},
		{`unknown product colombia-huila`, "colombia-huila"},
		{`unknown product french-press`, "french-press"},
		{`not found`, "colombia"},
	}
	for _, tc := range tests {
		if got := unknownID(tc.msg, ids); got != tc.want {
			t.Errorf("unknownID(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}
