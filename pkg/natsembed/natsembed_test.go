package natsembed_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/eventshop/pkg/natsembed"
)

func TestEmbeddedKeepsJetStreamAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	s, err := natsembed.Start(ctx, natsembed.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Close()

	s2, err := natsembed.Start(ctx, natsembed.Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.Embedded() {
		t.Fatal("want embedded server")
	}
	nc2, err := s2.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	stream, err := js2.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream lost across restart: %v", err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "t.a")
	if err != nil {
		t.Fatalf("message lost across restart: %v", err)
	}
	if string(msg.Data) != "kept" {
		t.Fatalf("got %q", msg.Data)
	}
}

func TestExternalURL(t *testing.T) {
	ctx := context.Background()
	emb, err := natsembed.Start(ctx, natsembed.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	ext, err := natsembed.Start(ctx, natsembed.Config{URL: emb.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	if ext.Embedded() {
		t.Fatal("an external server must not be reported as embedded")
	}
	ext.Close() // must not stop the server it does not own
	nc, err := emb.Connect()
	if err != nil {
		t.Fatalf("external Close stopped the server: %v", err)
	}
	nc.Close()
}

func TestUnreachableURLFails(t *testing.T) {
	_, err := natsembed.Start(context.Background(), natsembed.Config{URL: "nats://127.0.0.1:1", ReadyTimeout: 200e6})
	if err == nil {
		t.Fatal("want an error for an unreachable server")
	}
}

func TestMissingStoreDir(t *testing.T) {
	if _, err := natsembed.Start(context.Background(), natsembed.Config{}); err == nil {
		t.Fatal("want an error without StoreDir")
	}
}
