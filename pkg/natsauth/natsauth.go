// Package natsauth gives every service of the shop its own NATS identity and lets it
// publish and subscribe only what its role needs, so that reaching the broker is no
// longer enough to command the shop: only order may send commands, each participant
// takes only its own commands and speaks only for itself, only cart touches the carts
// bucket, and no service may delete a stream, purge it or pause a consumer. The
// operator identity (audits, projection rebuilds, dead-letter tools) may do anything.
//
// An identity is an nkey (an Ed25519 key pair): the server holds only public keys, a
// client proves it holds the seed by signing the server's nonce, so no password
// travels or sits in the server's configuration. Nkeys were chosen over NATS JWT
// accounts because the shop is one account with fixed roles: a static list of users
// with permissions is all it needs, it works the same in the embedded server, in a
// nats-server configuration file and in a Kubernetes Secret, and it needs no operator
// or account signing keys, nor a resolver to run.
//
// Each identity also gets its own inbox prefix (_INBOX_<name>): replies to its
// requests, JetStream acknowledgements and pulled messages come back there, and since
// it may subscribe only under its own prefix it cannot read another service's replies.
package natsauth

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The identities of the shop, one per role.
const (
	Order     = "order"
	Payment   = "payment"
	Inventory = "inventory"
	Shipping  = "shipping"
	Cart      = "cart"
	// Gateway keeps the storefront's sessions in their bucket, and nothing else.
	Gateway = "gateway"
	// Operator may publish and subscribe anything: shopd audit, projection rebuilds,
	// benchmarks and the people on call. Keep its seed where only they can read it.
	Operator = "operator"
)

// Names lists every identity, in the order they are written.
var Names = []string{Order, Payment, Inventory, Shipping, Cart, Gateway, Operator}

// seedExt is the extension of a seed file: <dir>/<name>.nk holds the seed on one line.
const seedExt = ".nk"

// InboxPrefix is where replies to name's requests arrive; name may subscribe only there.
func InboxPrefix(name string) string { return "_INBOX_" + name }

// Option connects as name with the seed in seedFile: it signs the server's nonce with
// the seed and uses name's inbox prefix. It returns an error if the file holds no valid
// user seed.
func Option(name, seedFile string) (nats.Option, error) {
	if _, err := readSeed(seedFile); err != nil {
		return nil, err
	}
	nkey, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		return nil, fmt.Errorf("natsauth: %s: %w", seedFile, err)
	}
	inbox := nats.CustomInboxPrefix(InboxPrefix(name))
	return func(o *nats.Options) error {
		if err := nkey(o); err != nil {
			return err
		}
		return inbox(o)
	}, nil
}

// Identities is a directory of seeds, one file per name, readable only by its owner.
type Identities struct {
	dir    string
	public map[string]string // name -> public key ("U...")
}

// Ensure opens the identities in dir, creating the directory (mode 0700) and the seed
// of every name that has none (mode 0600). An existing seed is kept, so a restart
// changes nothing; to rotate one, delete its file and call Ensure again. It returns an
// error if a seed is invalid or readable by anyone but its owner.
func Ensure(dir string) (*Identities, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("natsauth: %w", err)
	}
	for _, name := range Names {
		path := seedPath(dir, name)
		if _, err := os.Stat(path); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("natsauth: %w", err)
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("natsauth: new key for %s: %w", name, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("natsauth: new key for %s: %w", name, err)
		}
		// O_EXCL: two processes starting at once must not overwrite each other's seed.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("natsauth: %w", err)
		}
		_, werr := f.Write(append(seed, '\n'))
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, fmt.Errorf("natsauth: write %s: %w", path, werr)
		}
	}
	return Open(dir)
}

// Open reads the identities in dir without creating any. It returns an error naming the
// file if a seed is missing, invalid or readable by anyone but its owner.
func Open(dir string) (*Identities, error) {
	ids := &Identities{dir: dir, public: make(map[string]string, len(Names))}
	for _, name := range Names {
		path := seedPath(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("natsauth: identity %s: %w", name, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("natsauth: %s is readable by others (mode %04o); chmod 600 it", path, st.Mode().Perm())
		}
		kp, err := readSeed(path)
		if err != nil {
			return nil, err
		}
		if ids.public[name], err = kp.PublicKey(); err != nil {
			return nil, fmt.Errorf("natsauth: %s: %w", path, err)
		}
	}
	return ids, nil
}

// Dir is the directory the seeds are in.
func (ids *Identities) Dir() string { return ids.dir }

// SeedFile is the file holding name's seed: what a service run on its own is given
// with -nats-nkey.
func (ids *Identities) SeedFile(name string) string { return seedPath(ids.dir, name) }

// PublicKey is name's public key, the only part the server knows.
func (ids *Identities) PublicKey(name string) string { return ids.public[name] }

// Option connects as name (see the package-level Option).
func (ids *Identities) Option(name string) (nats.Option, error) {
	if _, ok := ids.public[name]; !ok {
		return nil, fmt.Errorf("natsauth: no identity %q", name)
	}
	return Option(name, ids.SeedFile(name))
}

// Users is every identity as the embedded server's users, with its permissions.
func (ids *Identities) Users() []*server.NkeyUser {
	users := make([]*server.NkeyUser, 0, len(Names))
	for _, name := range Names {
		users = append(users, &server.NkeyUser{Nkey: ids.public[name], Permissions: Permissions(name)})
	}
	return users
}

// ServerConfig renders the users as a nats-server configuration block, to include
// from the server's configuration file ("include auth.conf"): the same identities and
// permissions as the embedded server's, for a server run on its own.
func (ids *Identities) ServerConfig() string {
	var b strings.Builder
	b.WriteString("# NATS users of eventshop, one per service; generated by shopd nats-auth.\n")
	b.WriteString("# Only public keys are here; the seeds stay with the services.\n")
	b.WriteString("authorization {\n  users: [\n")
	for _, name := range Names {
		p := Permissions(name)
		fmt.Fprintf(&b, "    # %s\n    {\n      nkey: %s\n      permissions: {\n", name, ids.public[name])
		writeList(&b, "publish", p.Publish)
		writeList(&b, "subscribe", p.Subscribe)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func writeList(b *strings.Builder, kind string, sp *server.SubjectPermission) {
	quote := func(ss []string) string {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s) // "$JS..." unquoted would be a variable
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	fmt.Fprintf(b, "        %s: { allow: %s", kind, quote(sp.Allow))
	if len(sp.Deny) > 0 {
		fmt.Fprintf(b, ", deny: %s", quote(sp.Deny))
	}
	b.WriteString(" }\n")
}

func seedPath(dir, name string) string { return filepath.Join(dir, name+seedExt) }

func readSeed(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("natsauth: %w", err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return nil, fmt.Errorf("natsauth: %s: %w", path, err)
	}
	if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return nil, fmt.Errorf("natsauth: %s does not hold a user seed", path)
	}
	return kp, nil
}

// known reports whether name is one of Names.
func known(name string) bool { return slices.Contains(Names, name) }

// ClientFlags say how a service run on its own proves who it is to NATS and checks
// the server's certificate: the flags -nats-nkey and -nats-ca (SHOP_NATS_NKEY,
// SHOP_NATS_CA).
type ClientFlags struct {
	// Nkey is the file holding the service's seed; empty connects without an
	// identity (a server without users).
	Nkey string
	// CA is a PEM file of the authority that signed the server's certificate, for
	// tls:// URLs; empty trusts the system's authorities.
	CA string
}

// RegisterFlags defines -nats-nkey and -nats-ca on fs.
func (f *ClientFlags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Nkey, "nats-nkey", "", "file holding this service's NATS identity seed (shopd nats-auth creates them); empty connects without one")
	fs.StringVar(&f.CA, "nats-ca", "", "PEM file of the CA that signed the NATS server's certificate (tls:// URLs); empty trusts the system's")
}

// Option connects as name with the flags' seed and CA; nil when neither is set. It
// returns an error if the seed file holds no valid user seed.
func (f ClientFlags) Option(name string) (nats.Option, error) {
	var opts []nats.Option
	if f.Nkey != "" {
		as, err := Option(name, f.Nkey)
		if err != nil {
			return nil, err
		}
		opts = append(opts, as)
	}
	if f.CA != "" {
		opts = append(opts, nats.RootCAs(f.CA))
	}
	if len(opts) == 0 {
		return nil, nil
	}
	return func(o *nats.Options) error {
		for _, opt := range opts {
			if err := opt(o); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// Connect connects to url as name, with the flags' identity and CA after opts.
func (f ClientFlags) Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	as, err := f.Option(name)
	if err != nil {
		return nil, err
	}
	all := append([]nats.Option{nats.Name(name)}, opts...)
	if as != nil {
		all = append(all, as)
	}
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("nats %s as %s: %w", url, name, err)
	}
	return nc, nil
}
