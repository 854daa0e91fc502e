// Command ckcerts makes a development certificate authority for a
// ClusterKit cluster and a certificate for each node, for mutual TLS
// between members:
//
//	ckcerts -dir certs -nodes node-1,node-2,node-3 [-hosts db.example.com,10.0.0.5] [-days 365]
//
// It writes ca.pem and ca-key.pem (kept if they exist, so that nodes added
// later share the CA) and <node>.pem and <node>-key.pem, whose names are
// the node's name, localhost and 127.0.0.1 and any -hosts. Keys are
// readable by their owner only. For development and tests: a production
// cluster takes its certificates from its own CA.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"clusterkit.dev/clusterkit/certs"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ckcerts:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fl := flag.NewFlagSet("ckcerts", flag.ContinueOnError)
	dir := fl.String("dir", "certs", "directory to write the files into")
	nodes := fl.String("nodes", "", "comma-separated node names (their DNS names), required")
	hosts := fl.String("hosts", "", "comma-separated extra names or IP addresses for every node certificate")
	days := fl.Int("days", 365, "validity of the certificates, in days")
	if err := fl.Parse(args); err != nil {
		return err
	}
	names := split(*nodes)
	if len(names) == 0 {
		return errors.New("-nodes: at least one node name is required")
	}
	if *days < 1 {
		return fmt.Errorf("-days: %d is not a positive number of days", *days)
	}
	valid := time.Duration(*days) * 24 * time.Hour
	caCert, caKey := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
	ca, err := certs.LoadCA(caCert, caKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if ca, err = certs.NewCA("ClusterKit development CA", valid); err != nil {
			return err
		}
		fmt.Fprintf(out, "new CA %s\n", caCert)
	case err != nil:
		return fmt.Errorf("read the CA in %s: %w", *dir, err)
	default:
		fmt.Fprintf(out, "CA %s kept\n", caCert)
	}
	files, err := ca.WriteFiles(*dir, names, split(*hosts), valid)
	if err != nil {
		return err
	}
	for _, n := range names {
		fmt.Fprintf(out, "%s: %s %s\n", n, files[n].CertFile, files[n].KeyFile)
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
