package participant

import (
	"context"
	"flag"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/eventshop/pkg/auth"
	"github.com/eventshop/eventshop/pkg/config"
	"github.com/eventshop/eventshop/pkg/natsauth"
	"github.com/eventshop/eventshop/pkg/service"
	"github.com/eventshop/eventshop/pkg/telemetry"
)

// Runner is a built service: what Program.New returns.
type Runner interface {
	Run(ctx context.Context) error
}

// Program is the command line of a participant run on its own: the flags every
// participant shares (NATS, shared database, OIDC, telemetry, log level) plus its own.
type Program struct {
	// Name is the service's name, e.g. "payment". Required.
	Name string
	// OIDCUsage says what a token is required for when -oidc-issuer is set.
	OIDCUsage string
	// Flags registers the service's own flags on fs. Required.
	Flags func(fs *flag.FlagSet)
	// SharedDSN receives -read-dsn when -db-dsn was not given. Required.
	SharedDSN func(dsn string)
	// New builds the service from the flags read and the shared dependencies.
	// Required.
	New func(ctx context.Context, deps Deps) (Runner, error)
}

// Run parses args (flags or SHOP_* environment variables), sets up telemetry, connects
// to NATS, builds the service and runs it until SIGINT, SIGTERM or the end of ctx. It
// returns flag.ErrHelp for -h, or the error of any step.
func (p Program) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	v := p.register(fs)
	fs.Usage = config.Usage(fs)
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	startCfg, natsURL, readDSN, oidcIssuer, oidcAudience := v.startCfg, v.natsURL, v.readDSN, v.oidcIssuer, v.oidcAudience
	if readDSN != "" && !given(fs, "db-dsn") {
		p.SharedDSN(readDSN)
	}

	return startCfg.Run(ctx, p.Name, func(ctx context.Context, tel *telemetry.Telemetry) error {
		logger := tel.Logger()
		nc, err := v.nats.Connect(natsURL, p.Name, nats.MaxReconnects(-1))
		if err != nil {
			return err
		}
		defer nc.Drain()

		deps := Deps{Logger: logger, NATS: nc}
		if oidcIssuer != "" {
			v, err := auth.NewVerifier(ctx, auth.VerifierConfig{Issuer: oidcIssuer, Audience: oidcAudience})
			if err != nil {
				return err
			}
			deps.Verifier = v
		}
		svc, err := p.New(ctx, deps)
		if err != nil {
			return err
		}
		return svc.Run(ctx)
	})
}

// programFlags holds what the flags every participant shares were set to.
type programFlags struct {
	startCfg     service.Config
	natsURL      string
	nats         natsauth.ClientFlags
	readDSN      string
	oidcIssuer   string
	oidcAudience string
}

// RegisterFlags defines every flag of the program on fs, the service's own and the
// shared ones, with their defaults: what Run parses, for tools that check
// deployments against the binary's flags.
func (p Program) RegisterFlags(fs *flag.FlagSet) { p.register(fs) }

func (p Program) register(fs *flag.FlagSet) *programFlags {
	v := &programFlags{}
	p.Flags(fs)
	v.startCfg.RegisterFlags(fs)
	fs.StringVar(&v.natsURL, "nats-url", nats.DefaultURL, "NATS JetStream URL")
	v.nats.RegisterFlags(fs)
	fs.StringVar(&v.readDSN, "read-dsn", "", "database shared by the services (e.g. postgres://...); used when -db-dsn is not given")
	fs.StringVar(&v.oidcIssuer, "oidc-issuer", "", "OIDC issuer URL; "+p.OIDCUsage)
	fs.StringVar(&v.oidcAudience, "oidc-audience", auth.DefaultAudience, "audience tokens must carry")
	return v
}

// given reports whether the flag was set, on the command line or from its variable.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
