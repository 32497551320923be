package eventstore

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// A commit (all events of one append) is encoded in protobuf wire format so the body
// stays compact, binary-safe for payloads and readable by any protobuf tool:
//
//	message Commit { repeated Event events = 1; }
//	message Event  { string id = 1; string type = 2; int64 time_unix_nano = 3;
//	                 repeated Entry metadata = 4; bytes data = 5; }
//	message Entry  { string key = 1; string value = 2; }
//
// Stream name and first version travel in message headers (see jetstream.go).

var errCorruptCommit = errors.New("eventstore: corrupt commit")

func encodeCommit(evs []Event) []byte {
	var b, ev, kv []byte
	for _, e := range evs {
		ev = ev[:0]
		ev = protowire.AppendTag(ev, 1, protowire.BytesType)
		ev = protowire.AppendString(ev, e.ID)
		ev = protowire.AppendTag(ev, 2, protowire.BytesType)
		ev = protowire.AppendString(ev, e.Type)
		ev = protowire.AppendTag(ev, 3, protowire.VarintType)
		ev = protowire.AppendVarint(ev, uint64(e.Time.UnixNano()))
		for k, v := range e.Metadata {
			kv = kv[:0]
			kv = protowire.AppendTag(kv, 1, protowire.BytesType)
			kv = protowire.AppendString(kv, k)
			kv = protowire.AppendTag(kv, 2, protowire.BytesType)
			kv = protowire.AppendString(kv, v)
			ev = protowire.AppendTag(ev, 4, protowire.BytesType)
			ev = protowire.AppendBytes(ev, kv)
		}
		if len(e.Data) > 0 {
			ev = protowire.AppendTag(ev, 5, protowire.BytesType)
			ev = protowire.AppendBytes(ev, e.Data)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, ev)
	}
	return b
}

// decodeCommit decodes a commit body; unknown fields are skipped so that later
// versions can add fields.
func decodeCommit(b []byte) ([]Event, error) {
	var evs []Event
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		var e Event
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				e.ID = string(v)
			case num == 2 && typ == protowire.BytesType:
				e.Type = string(v)
			case num == 3 && typ == protowire.VarintType:
				e.Time = time.Unix(0, int64(n)).UTC()
			case num == 4 && typ == protowire.BytesType:
				var k, val string
				if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if typ == protowire.BytesType && num == 1 {
						k = string(v)
					} else if typ == protowire.BytesType && num == 2 {
						val = string(v)
					}
					return nil
				}); err != nil {
					return err
				}
				if e.Metadata == nil {
					e.Metadata = map[string]string{}
				}
				e.Metadata[k] = val
			case num == 5 && typ == protowire.BytesType:
				e.Data = append([]byte(nil), v...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("%w: no events", errCorruptCommit)
	}
	return evs, nil
}

// eachField walks one level of protobuf wire format, passing bytes fields as v and
// varints as n.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("%w: %v", errCorruptCommit, protowire.ParseError(l))
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("%w: %v", errCorruptCommit, protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}
