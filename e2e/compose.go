// Package e2e drives the compose stack of the repository (compose.yaml) for
// end-to-end tests: it brings a strategy's 10-node cluster up under a
// project name of its own, kills and starts node containers, and removes
// everything again. Tests run only where a Docker engine answers.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Nodes is the number of nodes of each cluster in compose.yaml.
const Nodes = 10

// Strategy names one of compose.yaml's clusters.
type Strategy struct {
	Name       string // profile: sync, async or server-side
	Service    string // service name prefix: kv-sync, node k is "kv-sync-k"
	PortPrefix string // host port of node k: PortPrefix followed by k in two digits
	PortEnv    string // the .env variable that sets PortPrefix
}

// Strategies are compose.yaml's clusters.
var Strategies = []Strategy{
	{Name: "sync", Service: "kv-sync", PortEnv: "KV_SYNC_PORT_PREFIX"},
	{Name: "async", Service: "kv-async", PortEnv: "KV_ASYNC_PORT_PREFIX"},
	{Name: "server-side", Service: "kv-server-side", PortEnv: "KV_SERVER_SIDE_PORT_PREFIX"},
}

// NodeService returns the compose service of node k (1-based).
func (s Strategy) NodeService(k int) string { return fmt.Sprintf("%s-%d", s.Service, k) }

// HostAddr returns the published address of node k.
func (s Strategy) HostAddr(k int) string { return fmt.Sprintf("127.0.0.1:%s%02d", s.PortPrefix, k) }

// Root returns the repository's root: the nearest parent of the working
// directory holding compose.yaml.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "compose.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("compose.yaml not found above the working directory")
		}
		dir = parent
	}
}

// DockerAvailable reports whether a Docker engine answers, and why not.
func DockerAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker version: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// ComposeCommand returns the compose command: DOCKER_COMPOSE if set, else
// "docker compose" (v2) where it exists, else docker-compose (1.29), as the
// Makefile chooses.
func ComposeCommand(ctx context.Context) []string {
	if c := strings.Fields(os.Getenv("DOCKER_COMPOSE")); len(c) > 0 {
		return c
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	return []string{"docker-compose"}
}

// Project is one compose project of the stack.
type Project struct {
	Name    string
	Root    string   // the directory of compose.yaml
	Compose []string // the compose command
	Env     []string // added to the environment of every compose command
	Log     func(format string, args ...any)
}

// Run runs a compose command of the project and returns its combined output.
func (p *Project) Run(ctx context.Context, args ...string) (string, error) {
	argv := append(append([]string{}, p.Compose...), append([]string{"-p", p.Name}, args...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.Root
	cmd.Env = append(os.Environ(), p.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	p.logf("%s (%.1fs)", strings.Join(argv, " "), time.Since(start).Seconds())
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out.String(), 30))
	}
	return out.String(), nil
}

// Down removes the project's containers, network and volumes, whatever
// profiles they were started with.
func (p *Project) Down(ctx context.Context) error {
	_, err := p.Run(ctx, "down", "-v", "--remove-orphans", "-t", "5")
	return err
}

// Container returns the ID of the container of a service of the project,
// running or not.
func (p *Project) Container(ctx context.Context, service string) (string, error) {
	out, err := docker(ctx, "ps", "-aq",
		"--filter", "label=com.docker.compose.project="+p.Name,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		return "", err
	}
	ids := strings.Fields(out)
	if len(ids) != 1 {
		return "", fmt.Errorf("service %s of project %s: %d containers", service, p.Name, len(ids))
	}
	return ids[0], nil
}

// Health returns the health status of a service's container ("healthy",
// "starting", "unhealthy"), or its state when it has no health check or is
// not running ("exited", ...).
func (p *Project) Health(ctx context.Context, service string) (string, error) {
	id, err := p.Container(ctx, service)
	if err != nil {
		return "", err
	}
	out, err := docker(ctx, "inspect", "--format",
		"{{if and .State.Running .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}", id)
	return strings.TrimSpace(out), err
}

// Kill sends SIGKILL to a service's container: a crash, not a stop.
func (p *Project) Kill(ctx context.Context, service string) error {
	id, err := p.Container(ctx, service)
	if err != nil {
		return err
	}
	_, err = docker(ctx, "kill", "-s", "KILL", id)
	return err
}

// Start starts a service's stopped container again, with its volume.
func (p *Project) Start(ctx context.Context, service string) error {
	id, err := p.Container(ctx, service)
	if err != nil {
		return err
	}
	_, err = docker(ctx, "start", id)
	return err
}

// Logs returns the last lines of every container's log.
func (p *Project) Logs(ctx context.Context, lines int) string {
	out, _ := p.Run(ctx, "logs", "--no-color", "--tail", fmt.Sprint(lines))
	return out
}

func (p *Project) logf(format string, args ...any) {
	if p.Log != nil {
		p.Log(format, args...)
	}
}

func docker(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
