package clusterkit

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// Options configure one ClusterKit node. Only NodeID and HTTPAddr are
// required; every other field has a default, applied by NewClusterKit.
type Options struct {
	// NodeID uniquely and permanently identifies this node in the cluster.
	// Required. Letters, digits, '-', '_' and '.' only.
	NodeID string
	// NodeName is a human-readable name. Default: "Server-<n>" when NodeID
	// ends in a number n ("node-1" -> "Server-1"), otherwise NodeID.
	NodeName string

	// HTTPAddr is the address the HTTP API listens on, e.g. ":8080" or
	// "0.0.0.0:8080". Required.
	HTTPAddr string
	// HTTPAdvertise is the host:port other nodes and clients dial to reach
	// this node's HTTP API. Default: HTTPAddr, with an empty or unspecified
	// host (":8080", "0.0.0.0:8080") replaced by 127.0.0.1. Set it to the
	// node's DNS name in containers ("node-3:8080").
	HTTPAdvertise string
	// RaftAddr is the address raft listens on. Default: HTTPAddr's host with
	// HTTPAddr's port + 1000 (":8080" -> ":9080").
	RaftAddr string
	// RaftAdvertise is the host:port other nodes dial for raft. Default:
	// RaftAddr with an empty or unspecified host replaced by HTTPAdvertise's
	// host. Raft refuses an unspecified advertise address.
	RaftAdvertise string

	// JoinAddr is a comma-separated list of HTTP addresses of cluster
	// members. A node that has no saved state asks them, in turn and with
	// retries, to add it; the request is forwarded to the leader. Every node
	// may be given the same list: a node ignores its own address, and a node
	// already in the cluster does not join again.
	JoinAddr string
	// Bootstrap makes this node found a new single-node cluster when it has
	// no saved state. Default: true when JoinAddr is empty. A node never
	// bootstraps twice: with saved state it resumes from it.
	Bootstrap bool
	// BootstrapExpect lets nodes given the same JoinAddr form a cluster
	// without a designated founder: a node with no saved state waits until
	// it sees BootstrapExpect nodes of the join list (itself included) that
	// are all waiting to form, and then exactly one of them founds the
	// cluster and the others join it. A node that finds a member of a
	// cluster in the join list joins it and never founds one, so a node
	// whose data was lost rejoins its cluster. It must be more than half of
	// the distinct nodes named by JoinAddr and this node, and at most their
	// number, so that two groups cannot each found a cluster; every node
	// should get the same JoinAddr and BootstrapExpect. 0 (the default)
	// turns it off. It excludes Bootstrap and is ignored with saved state.
	// See DESIGN.md, "Forming a cluster".
	BootstrapExpect int
	// DataDir holds the raft log, stable store and snapshots. Default:
	// ./clusterkit-data/<NodeID>.
	DataDir string

	// Zone is this node's failure domain. With at least ReplicationFactor
	// zones, no two owners of a partition share a zone.
	Zone string
	// Weight scales this node's share of partitions, 1 to MaxWeight.
	// Default 1.
	Weight int
	// Meta is replicated with the node and returned in every Node, like
	// Serf tags: for example the address of the application's own API.
	Meta map[string]string

	// ClusterToken is the cluster's shared secret; every member must have
	// the same one. With it set, every request that changes the cluster
	// (join, leave, drain, ready reports, formation promises) must carry it
	// as "Authorization: Bearer <token>" and is refused with 401 otherwise,
	// and every raft connection between nodes begins with a handshake in
	// which both ends prove that they hold it, without sending it. At least
	// 16 bytes. Empty (the default): no authentication.
	ClusterToken string
	// TLS, when set, serves the HTTP API and raft over TLS with this
	// node's certificate, and members verify each other against the
	// cluster's CA: a raft connection needs a certificate from that CA on
	// both ends (mutual TLS); HTTP clients may present one (members do),
	// and the token, not the certificate, authorises changes. Every member
	// must use TLS alike. Certificates name the addresses the node is
	// dialled by (HTTPAdvertise's and RaftAdvertise's hosts).
	TLS *TLSFiles
	// TokenForReads makes reads of the cluster's state (/cluster,
	// /partitions..., /consensus/..., /health/detailed) and /metrics need
	// the token too. /health stays open for probes. It needs ClusterToken.
	TokenForReads bool

	// Config holds the cluster settings and timeouts. Default:
	// DefaultConfig().
	Config *Config

	// Logger receives the library's logs. Default: slog.Default().
	Logger *slog.Logger
}

// MaxWeight bounds a node's Weight: a node may take at most MaxWeight times
// the share of a node of weight 1.
const MaxWeight = 1000

// minTokenLen is the shortest ClusterToken accepted.
const minTokenLen = 16

// resolved is Options after defaults: what the node runs with.
type resolved struct {
	Options
	cfg       Config
	joinAddrs []string
	// formationNodes counts the distinct nodes of the join list, this node
	// included: the group of which BootstrapExpect must be a majority.
	formationNodes int
}

func resolveOptions(o Options) (*resolved, error) {
	if o.NodeID == "" {
		return nil, &FieldError{Field: "NodeID", Reason: "required"}
	}
	if !validID(o.NodeID) {
		return nil, &FieldError{Field: "NodeID", Reason: fmt.Sprintf("%q: use letters, digits, '-', '_' and '.' (at most 128)", o.NodeID)}
	}
	if o.HTTPAddr == "" {
		return nil, &FieldError{Field: "HTTPAddr", Reason: "required"}
	}
	r := &resolved{Options: o}
	if r.NodeName == "" {
		r.NodeName = defaultNodeName(o.NodeID)
	}
	httpHost, httpPort, err := splitHostPort("HTTPAddr", o.HTTPAddr)
	if err != nil {
		return nil, err
	}
	if r.HTTPAdvertise == "" {
		r.HTTPAdvertise = net.JoinHostPort(advertiseHost(httpHost, "127.0.0.1"), strconv.Itoa(httpPort))
	} else if err := checkDialable("HTTPAdvertise", r.HTTPAdvertise); err != nil {
		return nil, err
	}
	if r.RaftAddr == "" {
		if httpPort+1000 > 65535 {
			return nil, &FieldError{Field: "RaftAddr", Reason: fmt.Sprintf("cannot derive from HTTPAddr port %d (+1000 > 65535); set it", httpPort)}
		}
		r.RaftAddr = net.JoinHostPort(httpHost, strconv.Itoa(httpPort+1000))
	}
	raftHost, raftPort, err := splitHostPort("RaftAddr", r.RaftAddr)
	if err != nil {
		return nil, err
	}
	if r.RaftAdvertise == "" {
		advHost, _, _ := net.SplitHostPort(r.HTTPAdvertise)
		r.RaftAdvertise = net.JoinHostPort(advertiseHost(raftHost, advHost), strconv.Itoa(raftPort))
	} else if err := checkDialable("RaftAdvertise", r.RaftAdvertise); err != nil {
		return nil, err
	}
	for _, a := range strings.Split(o.JoinAddr, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if err := checkDialable("JoinAddr", a); err != nil {
			return nil, err
		}
		if a != r.HTTPAdvertise {
			r.joinAddrs = append(r.joinAddrs, a)
		}
	}
	if err := r.checkBootstrapExpect(); err != nil {
		return nil, err
	}
	if o.JoinAddr == "" && o.BootstrapExpect == 0 {
		r.Bootstrap = true
	}
	if r.DataDir == "" {
		r.DataDir = filepath.Join("clusterkit-data", o.NodeID)
	}
	if r.Weight < 0 || r.Weight > MaxWeight {
		return nil, &FieldError{Field: "Weight", Reason: fmt.Sprintf("%d is outside 1 to %d", r.Weight, MaxWeight)}
	}
	if r.ClusterToken != "" && len(r.ClusterToken) < minTokenLen {
		return nil, &FieldError{Field: "ClusterToken", Reason: fmt.Sprintf("%d bytes: use at least %d", len(r.ClusterToken), minTokenLen)}
	}
	if r.TokenForReads && r.ClusterToken == "" {
		return nil, &FieldError{Field: "TokenForReads", Reason: "set without ClusterToken"}
	}
	if r.Weight == 0 {
		r.Weight = 1
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	r.Logger = r.Logger.With("node", o.NodeID)
	if o.Config != nil {
		r.cfg = *o.Config
	}
	r.cfg.fillDefaults()
	if err := r.cfg.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// checkBootstrapExpect counts the nodes of the join list and checks that
// BootstrapExpect is a majority of them: two groups of a majority share a
// node, which promises to one founder only (formation.go).
func (r *resolved) checkBootstrapExpect() error {
	distinct := map[string]bool{}
	for _, a := range r.joinAddrs {
		distinct[a] = true
	}
	r.formationNodes = len(distinct) + 1
	e, n := r.BootstrapExpect, r.formationNodes
	switch {
	case e == 0:
		return nil
	case e < 0:
		return &FieldError{Field: "BootstrapExpect", Reason: fmt.Sprintf("%d is negative", e)}
	case r.Bootstrap:
		return &FieldError{Field: "BootstrapExpect", Reason: "set together with Bootstrap: a node either founds the cluster alone or waits for the others"}
	case e > n:
		return &FieldError{Field: "BootstrapExpect", Reason: fmt.Sprintf("%d is more than the %d nodes in JoinAddr (this node included)", e, n)}
	case 2*e <= n:
		return &FieldError{Field: "BootstrapExpect", Reason: fmt.Sprintf("%d is not a majority of the %d nodes in JoinAddr (this node included): two groups could each found a cluster", e, n)}
	}
	return nil
}

func validID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c) || c == '-' || c == '_' || c == '.')) {
			return false
		}
	}
	return true
}

// defaultNodeName turns "node-1" into "Server-1"; an ID without a trailing
// number is its own name.
func defaultNodeName(id string) string {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	if i == len(id) {
		return id
	}
	return "Server-" + id[i:]
}

func splitHostPort(field, addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, &FieldError{Field: field, Reason: fmt.Sprintf("%q is not host:port", addr)}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, &FieldError{Field: field, Reason: fmt.Sprintf("%q has no valid port (1-65535)", addr)}
	}
	return host, port, nil
}

// checkDialable accepts host:port with a concrete host.
func checkDialable(field, addr string) error {
	host, _, err := splitHostPort(field, addr)
	if err != nil {
		return err
	}
	if unspecified(host) {
		return &FieldError{Field: field, Reason: fmt.Sprintf("%q has no dialable host", addr)}
	}
	return nil
}

func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func advertiseHost(bindHost, fallback string) string {
	if unspecified(bindHost) {
		return fallback
	}
	return bindHost
}
