package gateway_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
)

// A gateway on 127.0.0.1 answers on the IPv6 loopback at the same port too, so
// http://[::1]:port and a "localhost" that resolves to ::1 reach it.
func TestGatewayAnswersOnBothLoopbacks(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	}
	probe.Close()

	s := startShop(t, shopOptions{without: []string{"cart", "order", "payment", "inventory", "shipping"}, listenItself: true})
	port := s.gw.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		resp, err := http.Get(fmt.Sprintf("http://%s:%d/healthz", host, port))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
			t.Errorf("%s: %d %q", host, resp.StatusCode, body)
		}
	}
}
