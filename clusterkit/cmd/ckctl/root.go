package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
)

// defaultAddr is the node ckctl asks when neither --addr nor
// CLUSTERKIT_ADDR names one.
const defaultAddr = "127.0.0.1:8080"

// app holds what every command needs: the global flags and the output.
type app struct {
	addr    string
	output  string
	token   string
	caFile  string
	adm     *client.Admin
	timeout time.Duration
	out     io.Writer
	// now is the clock for durations shown to the user.
	now func() time.Time
}

// admin returns the client of the chosen node.
func (a *app) admin() *client.Admin { return a.adm }

// newAdmin builds the client of the chosen node: over HTTPS, verified by
// the CA in --cacert, when one is given.
func (a *app) newAdmin() (*client.Admin, error) {
	opts := []client.AdminOption{client.WithAdminToken(a.token)}
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, usageErr("--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--cacert: %s holds no PEM certificate", a.caFile)
		}
		opts = append(opts, client.WithAdminTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	return client.NewAdmin(a.addr, opts...), nil
}

// ctx bounds one command's requests by --timeout.
func (a *app) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, a.timeout)
}

func (a *app) json() bool { return a.output == "json" }

// withMap returns a command body that fetches the node's map, bounded by
// --timeout, and hands it to show.
func (a *app) withMap(show func(info *wire.ClusterInfo) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, cancel := a.ctx(cmd.Context())
		defer cancel()
		info, err := a.admin().Cluster(ctx)
		if err != nil {
			return err
		}
		return show(info)
	}
}

// run executes ckctl with args and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{out: stdout, now: time.Now}
	root := newRoot(a, getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "ckctl:", err)
	return exitCode(err)
}

func newRoot(a *app, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "ckctl",
		Short: "Operate a ClusterKit cluster through any node's HTTP API",
		Long: `ckctl talks to any node of a ClusterKit cluster (--addr, or CLUSTERKIT_ADDR).

Exit status: 0 success, 1 unexpected error, 2 bad command line, 3 no node
answered or no leader (HTTP 503), 4 request refused (HTTP 4xx), 5 status
found the cluster unhealthy, 6 a --wait ended before the node was empty.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return usageErr("--output must be table or json, not %q", a.output)
			}
			if a.timeout <= 0 {
				return usageErr("--timeout must be positive")
			}
			adm, err := a.newAdmin()
			a.adm = adm
			return err
		},
	}
	addr := getenv("CLUSTERKIT_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", addr, "HTTP address of any node (env CLUSTERKIT_ADDR)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	pf.StringVar(&a.token, "token", getenv("CLUSTERKIT_TOKEN"), "the cluster token, for drains and leaves (and reads with TokenForReads) (env CLUSTERKIT_TOKEN)")
	pf.StringVar(&a.caFile, "cacert", getenv("CLUSTERKIT_CACERT"), "the cluster's CA certificate: speak HTTPS, verifying the node with it (env CLUSTERKIT_CACERT)")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "how long a command may take")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	root.AddCommand(statusCmd(a), nodesCmd(a), partitionsCmd(a), keyCmd(a), planCmd(a), explainCmd(a),
		historyCmd(a), drainCmd(a), leaveCmd(a), watchCmd(a))
	return root
}

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageErr("%s: %v", cmd.CommandPath(), err)
		}
		return nil
	}
}
