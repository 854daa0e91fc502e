package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Network is a private IPv4 network of hosts, each a network namespace of
// its own with one veth link to a bridge in the suite's namespace. The
// suite reaches every host through the bridge's address; a cut between two
// hosts is an iptables rule in the receiving host's namespace, so the
// suite's clients keep reaching every node while the nodes lose each other,
// as when a switch between machines fails.
type Network struct {
	prefix string // names of the bridge, links and namespaces start with it
	subnet string // first three octets, e.g. "10.201.7"

	mu    sync.Mutex
	hosts []*Host
	rule  bool // the FORWARD rule for the bridge is in place
}

// Host is one namespace of a Network.
type Host struct {
	NS   string // namespace name
	IP   string // address on the network
	link string // host side of the veth
}

// run runs a command and returns its error with its output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CanBuildNetworks reports why this process cannot build a Network, or nil
// if it can: it needs root and the ip and iptables commands.
func CanBuildNetworks() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces and iptables need root")
	}
	for _, c := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%s not found: %w", c, err)
		}
	}
	return nil
}

// NewNetwork builds an empty network. id distinguishes networks built at the
// same time on one machine (a process ID will do); it picks the names and
// the subnet 10.201.(id%250).0/24.
func NewNetwork(id int) (*Network, error) {
	nw := &Network{prefix: fmt.Sprintf("ckf%d", id%100000), subnet: fmt.Sprintf("10.201.%d", id%250)}
	br := nw.bridge()
	_ = run("ip", "link", "del", br) // a leftover of a killed run with the same id
	steps := [][]string{
		{"ip", "link", "add", br, "type", "bridge"},
		{"ip", "addr", "add", nw.subnet + ".254/24", "dev", br},
		{"ip", "link", "set", br, "up"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			_ = nw.Close()
			return nil, err
		}
	}
	// Docker sets the FORWARD policy to DROP and makes bridged traffic
	// pass iptables: let traffic between the hosts through.
	if err := run("iptables", "-I", "FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"); err != nil {
		_ = nw.Close()
		return nil, err
	}
	nw.rule = true
	return nw, nil
}

func (nw *Network) bridge() string { return nw.prefix + "b" }

// AddHost adds a namespace with the next address, 10.201.x.1 first.
func (nw *Network) AddHost() (*Host, error) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	k := len(nw.hosts) + 1
	if k > 250 {
		return nil, errors.New("faults: a network holds at most 250 hosts")
	}
	h := &Host{NS: fmt.Sprintf("%s-%d", nw.prefix, k), IP: fmt.Sprintf("%s.%d", nw.subnet, k), link: fmt.Sprintf("%sv%d", nw.prefix, k)}
	_ = run("ip", "netns", "del", h.NS)
	steps := [][]string{
		{"ip", "netns", "add", h.NS},
		{"ip", "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		{"ip", "link", "set", h.link, "master", nw.bridge(), "up"},
		{"ip", "-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			_ = run("ip", "netns", "del", h.NS)
			return nil, err
		}
	}
	nw.hosts = append(nw.hosts, h)
	return h, nil
}

// Drop makes to drop every packet from from: a one-way cut. Two calls, one
// each way, cut both ways.
func (nw *Network) Drop(from, to *Host) error {
	return run("ip", "netns", "exec", to.NS, "iptables", "-A", "INPUT", "-s", from.IP, "-j", "DROP")
}

// Isolate cuts h off from every other host, both ways; the suite's
// clients still reach it.
func (nw *Network) Isolate(h *Host) error {
	nw.mu.Lock()
	hosts := append([]*Host(nil), nw.hosts...)
	nw.mu.Unlock()
	for _, o := range hosts {
		if o == h {
			continue
		}
		if err := nw.Drop(h, o); err != nil {
			return err
		}
		if err := nw.Drop(o, h); err != nil {
			return err
		}
	}
	return nil
}

// Split cuts every host of a from every host of b, both ways.
func (nw *Network) Split(a, b []*Host) error {
	for _, x := range a {
		for _, y := range b {
			if err := nw.Drop(x, y); err != nil {
				return err
			}
			if err := nw.Drop(y, x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal removes every cut.
func (nw *Network) Heal() error {
	nw.mu.Lock()
	hosts := append([]*Host(nil), nw.hosts...)
	nw.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, run("ip", "netns", "exec", h.NS, "iptables", "-F", "INPUT"))
	}
	return errors.Join(errs...)
}

// Close removes the namespaces, their links, the bridge and its rule. The
// processes in the namespaces must have ended.
func (nw *Network) Close() error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var errs []error
	for _, h := range nw.hosts {
		errs = append(errs, run("ip", "netns", "del", h.NS))
	}
	nw.hosts = nil
	if nw.rule {
		errs = append(errs, run("iptables", "-D", "FORWARD", "-i", nw.bridge(), "-o", nw.bridge(), "-j", "ACCEPT"))
		nw.rule = false
	}
	errs = append(errs, run("ip", "link", "del", nw.bridge()))
	return errors.Join(errs...)
}
