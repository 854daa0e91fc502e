package client_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// serverDeps are what a node links and a program that only talks to a
// cluster must not: the library's root package and, by module path
// prefix, raft, echo and the Prometheus client library.
var serverDeps = []string{
	"github.com/hashicorp/raft",
	"github.com/labstack/echo",
	"github.com/prometheus/client_golang",
}

const rootPackage = "clusterkit.dev/clusterkit"

// deps lists pkg and every package it imports, directly or not, as the go
// command resolves them for a build.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	list := strings.Fields(string(out))
	if len(list) == 0 || list[len(list)-1] != pkg {
		t.Fatalf("go list -deps %s: the package itself is not listed last: %q", pkg, list)
	}
	return list
}

// serverDepsOf returns the packages of list that a node needs and a client
// must not link.
func serverDepsOf(list []string) []string {
	var found []string
	for _, dep := range list {
		if dep == rootPackage {
			found = append(found, dep)
			continue
		}
		for _, prefix := range serverDeps {
			if strings.HasPrefix(dep, prefix) {
				found = append(found, dep)
			}
		}
	}
	return found
}

// The client SDK, the wire types and the programs built only on them link
// none of a node's dependencies.
func TestClientLinksNoServerDependencies(t *testing.T) {
	for _, pkg := range []string{
		"clusterkit.dev/clusterkit/wire",
		"clusterkit.dev/clusterkit/client",
		"clusterkit.dev/clusterkit/cmd/ckctl",
		"clusterkit.dev/clusterkit/examples/route",
	} {
		if found := serverDepsOf(deps(t, pkg)); len(found) > 0 {
			t.Errorf("%s links the server's dependencies: %s", pkg, strings.Join(found, ", "))
		}
	}
}

// The check above finds what it looks for: the library itself links each
// of the server's dependencies.
func TestServerDepsAreFoundInTheLibrary(t *testing.T) {
	found := strings.Join(serverDepsOf(deps(t, rootPackage)), " ")
	for _, want := range append([]string{rootPackage}, serverDeps...) {
		if !strings.Contains(found, want) {
			t.Errorf("%s does not link %s; found %s", rootPackage, want, found)
		}
	}
}
