package clusterkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"clusterkit.dev/clusterkit/internal/state"
)

// Forming a cluster with BootstrapExpect (DESIGN.md, "Forming a cluster").
// A node with no saved state probes the nodes of its join list. If one of
// them has cluster state it joins through the normal join path. Otherwise,
// once it sees BootstrapExpect waiting nodes (itself included), the lowest
// NodeID among them asks the others for a promise; with BootstrapExpect
// promises, its own included, it bootstraps alone and the others join it.
// A node promises to one founder at a time, so two founders cannot both
// hold promises from a majority of the join list.

// The states a node reports on GET /cluster/formation.
const (
	// FormationWaiting: the node has BootstrapExpect set, no cluster state,
	// and waits for enough nodes to form a cluster.
	FormationWaiting = "waiting"
	// FormationFounding: the node holds its promises and is bootstrapping
	// the cluster.
	FormationFounding = "founding"
	// FormationJoining: the node has no cluster state yet and is not
	// waiting to form one: it is asking the join list to add it (or, with
	// Bootstrap, about to found the cluster).
	FormationJoining = "joining"
	// FormationMember: the node has cluster state (a raft log): it founded
	// or joined a cluster, or restarted from its DataDir.
	FormationMember = "member"
)

// promiseFile, in DataDir, records the founder a waiting node promised to,
// so that a restart does not free the node from its promise.
const promiseFile = "formation-promise.json"

// formation is a node's part in forming a cluster. Its fields are guarded
// by mu, which is never held while taking another lock of the node.
type formation struct {
	mu sync.Mutex
	// phase is "" for a node that takes no part (saved state, Bootstrap,
	// plain join), else waiting, founding or joining.
	phase string
	// promise is the founder this node waits for: another node, or this
	// node itself while it collects promises. nil when free.
	promise *promise
	// seen lists the waiting nodes of the last probe, this node included.
	seen []string
	// members are the nodes that promised to the founder this node became:
	// it adds them before the first table (addFoundingMembers).
	members []JoinRequest
}

// promise binds a waiting node to one founder. Until it lapses the node
// neither founds nor promises another founder; after, it checks on the
// founder: a member is joined, a founder still waiting frees the node, and
// a founder that does not answer keeps it bound.
type promise struct {
	Founder  string `json:"founder"`
	HTTPAddr string `json:"http_addr"`
	// until is when the promise lapses.
	until time.Time
}

// promiseTTL is how long a promise binds before the node checks on the
// founder; a founder bootstraps only within half of it from its request.
func (o *resolved) promiseTTL() time.Duration {
	return min(max(10*o.cfg.JoinRetryInterval, time.Second), 10*time.Second)
}

// formationTimeout bounds one probe or promise request.
func (o *resolved) formationTimeout() time.Duration { return o.promiseTTL() / 4 }

// hasState reports whether the node has cluster state: it restarted from
// its DataDir, bootstrapped, or received log entries from a leader.
func (rn *raftNode) hasState() bool { return rn.hadState || rn.LastIndex() > 0 }

func (ck *ClusterKit) hasClusterState() bool {
	rn := ck.raftNode()
	return rn != nil && rn.hasState()
}

// formationStatus describes this node for GET /cluster/formation.
func (ck *ClusterKit) formationStatus() FormationStatus {
	o := ck.opts
	s := FormationStatus{ID: o.NodeID, HTTPAddr: o.HTTPAdvertise, RaftAddr: o.RaftAdvertise,
		Expect: o.BootstrapExpect, Nodes: o.formationNodes}
	f := &ck.formation
	f.mu.Lock()
	s.State = f.phase
	s.Seen = slices.Clone(f.seen)
	if f.promise != nil {
		s.PromisedTo = f.promise.Founder
	}
	f.mu.Unlock()
	switch {
	case ck.hasClusterState():
		s.State, s.Seen = FormationMember, nil
	case s.State == "":
		s.State = FormationJoining
	}
	return s
}

// handleFormation serves GET /cluster/formation.
func (ck *ClusterKit) handleFormation(c echo.Context) error {
	return c.JSON(http.StatusOK, ck.formationStatus())
}

// handlePromise serves POST /cluster/formation.
func (ck *ClusterKit) handlePromise(c echo.Context) error {
	var req PromiseRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	switch {
	case req.ID == "":
		return badRequest("id", "required")
	case !validID(req.ID):
		return badRequest("id", fmt.Sprintf("%q: use letters, digits, '-', '_' and '.'", req.ID))
	}
	if err := checkDialable("http_addr", req.HTTPAddr); err != nil {
		return err
	}
	granted, reason := ck.decidePromise(req)
	resp := PromiseResponse{Granted: granted, Reason: reason, FormationStatus: ck.formationStatus()}
	if granted {
		join := ck.joinRequest()
		resp.Join = &join
	}
	return c.JSON(http.StatusOK, resp)
}

// decidePromise grants req when this node is waiting, expects as many
// nodes as the founder and is not bound to another founder; a promise is
// recorded in DataDir before it is granted. A release frees the node from
// that founder's promise.
func (ck *ClusterKit) decidePromise(req PromiseRequest) (bool, string) {
	// A node only ever gains cluster state; one that gains it after this
	// check never founds, so its promise does no harm.
	hasState := ck.hasClusterState()
	f := &ck.formation
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.promise
	if req.Release {
		if p != nil && p.Founder == req.ID && req.ID != ck.opts.NodeID {
			ck.dropPromiseLocked()
		}
		return false, "released"
	}
	switch {
	case req.ID == ck.opts.NodeID:
		return false, "the founder has this node's ID"
	case f.phase != FormationWaiting || hasState:
		return false, "not waiting to form a cluster"
	case req.Expect != ck.opts.BootstrapExpect:
		return false, fmt.Sprintf("the founder expects %d nodes, this node %d", req.Expect, ck.opts.BootstrapExpect)
	case p != nil && p.Founder == ck.opts.NodeID:
		return false, "collecting promises itself"
	case p != nil && p.Founder != req.ID:
		return false, "promised to " + p.Founder
	}
	np := &promise{Founder: req.ID, HTTPAddr: req.HTTPAddr, until: time.Now().Add(ck.opts.promiseTTL())}
	if err := ck.savePromise(np); err != nil {
		ck.log.Warn("cannot record a formation promise", "founder", req.ID, "err", err)
		return false, "cannot record the promise"
	}
	f.promise = np
	return true, ""
}

// savePromise writes p to DataDir, durably, before it is granted.
func (ck *ClusterKit) savePromise(p *promise) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	path := filepath.Join(ck.opts.DataDir, promiseFile)
	tmp, err := os.CreateTemp(ck.opts.DataDir, promiseFile+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// loadPromise reads a promise left by an earlier run, nil when there is
// none. It binds for a full life from now: the founder may have counted it
// just before the restart.
func (ck *ClusterKit) loadPromise() (*promise, error) {
	b, err := os.ReadFile(filepath.Join(ck.opts.DataDir, promiseFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read formation promise: %w", err)
	}
	var p promise
	if err := json.Unmarshal(b, &p); err != nil || p.Founder == "" {
		return nil, fmt.Errorf("read formation promise: malformed %s: %q", promiseFile, b)
	}
	p.until = time.Now().Add(ck.opts.promiseTTL())
	return &p, nil
}

// dropPromiseLocked frees the node from its promise. Call with f.mu held.
func (ck *ClusterKit) dropPromiseLocked() {
	p := ck.formation.promise
	ck.formation.promise = nil
	if p != nil && p.Founder != ck.opts.NodeID {
		if err := os.Remove(filepath.Join(ck.opts.DataDir, promiseFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			ck.log.Warn("cannot remove the formation promise", "err", err)
		}
	}
}

// form makes a node with BootstrapExpect and no saved state a member. Each
// JoinRetryInterval it probes the join list: if a node there has cluster
// state it joins the cluster; otherwise it waits until it sees
// BootstrapExpect waiting nodes, and the lowest NodeID among them founds the
// cluster once it holds their promises. form returns nil once this node
// founded the cluster or joined it, and an error when ctx ends or the join
// fails. It waits for the others without a deadline.
func (ck *ClusterKit) form(ctx context.Context, rn *raftNode) error {
	var wl waitLog
	for {
		probed := time.Now()
		peers := ck.probe(ctx, ck.opts.joinAddrs)
		if err := ctx.Err(); err != nil {
			return err
		}
		if m := firstMember(peers); m != "" || rn.hasState() {
			return ck.joinFormed(ctx, m)
		}
		waiting, others := ck.waitingPeers(peers)
		founderUp, founder := ck.checkPromise(ctx, peers, probed)
		if founder != "" {
			return ck.joinFormed(ctx, founder)
		}
		pause := ck.opts.cfg.JoinRetryInterval
		if ck.candidate(waiting, peers) {
			founded, memberSeen, err := ck.tryFound(ctx, rn, waiting)
			switch {
			case err != nil:
				return err
			case founded:
				return nil
			case memberSeen:
				continue
			}
			// Another founder holds some of the promises: back off for a
			// random time so that two candidates do not collide again.
			ttl := ck.opts.promiseTTL()
			pause = ttl/4 + rand.N(ttl/4)
		}
		ck.logWaiting(&wl, others, founderUp)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// beginFormation makes the node waiting, bound by the promise an earlier
// run recorded, if any. Start calls it before it serves requests.
func (ck *ClusterKit) beginFormation() error {
	p, err := ck.loadPromise()
	if err != nil {
		return err
	}
	f := &ck.formation
	f.mu.Lock()
	f.phase, f.promise = FormationWaiting, p
	f.mu.Unlock()
	if p != nil {
		ck.log.Info("promised to a founder before a restart: bound until it is checked on", "founder", p.Founder)
	}
	return nil
}

// joinFormed joins the cluster that member (or, when empty, some node of
// the join list) is in; the node never founds a cluster after this.
func (ck *ClusterKit) joinFormed(ctx context.Context, member string) error {
	f := &ck.formation
	f.mu.Lock()
	f.phase, f.seen = FormationJoining, nil
	f.mu.Unlock()
	if member != "" {
		ck.log.Info("a cluster exists: joining it", "member", member)
	} else {
		ck.log.Info("a leader has sent this node its log: joining its cluster")
	}
	if err := ck.join(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	ck.dropPromiseLocked()
	f.mu.Unlock()
	return nil
}

// probe asks each address for its formation status, all at once, and
// returns the answers of the nodes that answered, other than this one, one
// per node.
func (ck *ClusterKit) probe(ctx context.Context, addrs []string) []FormationStatus {
	ctx, cancel := context.WithTimeout(ctx, ck.opts.formationTimeout())
	defer cancel()
	answers := make([]*FormationStatus, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			var s FormationStatus
			if err := ck.get(ctx, a, "/cluster/formation", &s); err == nil {
				answers[i] = &s
			}
		})
	}
	wg.Wait()
	var out []FormationStatus
	for _, s := range answers {
		if s != nil && s.ID != ck.opts.NodeID && !slices.ContainsFunc(out, func(o FormationStatus) bool { return o.ID == s.ID }) {
			out = append(out, *s)
		}
	}
	return out
}

// firstMember returns the ID of a peer with cluster state, or "".
func firstMember(peers []FormationStatus) string {
	for _, p := range peers {
		if p.State == FormationMember {
			return p.ID
		}
	}
	return ""
}

// waitingPeers returns the peers that wait to form a cluster with the same
// BootstrapExpect, and records them, with this node, as seen. others
// describes the peers that answered but do not count.
func (ck *ClusterKit) waitingPeers(peers []FormationStatus) (waiting []FormationStatus, others []string) {
	seen := []string{ck.opts.NodeID}
	for _, p := range peers {
		switch {
		case p.State == FormationWaiting && p.Expect == ck.opts.BootstrapExpect:
			waiting = append(waiting, p)
			seen = append(seen, p.ID)
		case p.State == FormationWaiting:
			others = append(others, fmt.Sprintf("%s expects %d", p.ID, p.Expect))
		default:
			others = append(others, p.ID+" is "+p.State)
		}
	}
	slices.Sort(seen)
	ck.formation.mu.Lock()
	ck.formation.seen = seen
	ck.formation.mu.Unlock()
	return waiting, others
}

// candidate reports whether this node should ask for promises: it is free,
// it sees BootstrapExpect waiting nodes, itself included, it has the lowest
// NodeID among them, and no peer is founding.
func (ck *ClusterKit) candidate(waiting, peers []FormationStatus) bool {
	f := &ck.formation
	f.mu.Lock()
	free := f.promise == nil && f.phase == FormationWaiting
	f.mu.Unlock()
	if !free || len(waiting)+1 < ck.opts.BootstrapExpect {
		return false
	}
	for _, p := range peers {
		if p.State == FormationFounding {
			return false
		}
	}
	for _, p := range waiting {
		if p.ID < ck.opts.NodeID {
			return false
		}
	}
	return true
}

// checkPromise checks on the founder of a lapsed promise, with an answer
// asked for after the promise lapsed: peers, probed at probed, or a request
// of its own. It frees the node when the founder is still waiting, or no
// longer answers at its address under its ID; it keeps the node bound while
// the founder does not answer or is founding. founderUp is false while the
// node is bound to a founder that does not answer; member is the founder's
// ID once it is a member.
func (ck *ClusterKit) checkPromise(ctx context.Context, peers []FormationStatus, probed time.Time) (founderUp bool, member string) {
	f := &ck.formation
	f.mu.Lock()
	p := f.promise
	f.mu.Unlock()
	if p == nil || p.Founder == ck.opts.NodeID || time.Now().Before(p.until) {
		return true, ""
	}
	var st *FormationStatus
	if i := slices.IndexFunc(peers, func(s FormationStatus) bool { return s.ID == p.Founder }); i >= 0 && probed.After(p.until) {
		st = &peers[i]
	} else {
		sctx, cancel := context.WithTimeout(ctx, ck.opts.formationTimeout())
		var s FormationStatus
		if err := ck.get(sctx, p.HTTPAddr, "/cluster/formation", &s); err == nil {
			st = &s
		}
		cancel()
	}
	switch {
	case st == nil:
		return false, ""
	case st.ID == p.Founder && st.State == FormationMember:
		return true, p.Founder
	case st.ID == p.Founder && st.State == FormationFounding:
		return true, ""
	}
	// The founder is waiting again, joining another cluster, or gone from
	// its address: it will not found with this promise.
	f.mu.Lock()
	if f.promise == p {
		ck.dropPromiseLocked()
	}
	f.mu.Unlock()
	return true, ""
}

// tryFound asks the waiting peers for promises and bootstraps the cluster
// when BootstrapExpect nodes, this one included, have promised within half
// a promise's life of the request (a promise lapses a full life after the
// node received it). Otherwise it gives the promises back. memberSeen is
// true when a peer answered that it has cluster state.
func (ck *ClusterKit) tryFound(ctx context.Context, rn *raftNode, waiting []FormationStatus) (founded, memberSeen bool, err error) {
	f := &ck.formation
	self := ck.opts.NodeID
	f.mu.Lock()
	if f.promise != nil || f.phase != FormationWaiting {
		f.mu.Unlock()
		return false, false, nil
	}
	f.promise = &promise{Founder: self, HTTPAddr: ck.opts.HTTPAdvertise}
	f.mu.Unlock()

	ttl := ck.opts.promiseTTL()
	sent := time.Now()
	req := PromiseRequest{ID: self, HTTPAddr: ck.opts.HTTPAdvertise, Expect: ck.opts.BootstrapExpect}
	replies := ck.askPromises(ctx, waiting, req)
	var granted []FormationStatus
	var members []JoinRequest
	promisers := []string{self}
	for i, r := range replies {
		if r == nil {
			continue
		}
		if r.Granted {
			granted = append(granted, waiting[i])
			promisers = append(promisers, waiting[i].ID)
			if r.Join != nil && r.Join.ID == waiting[i].ID {
				members = append(members, *r.Join)
			}
		}
		if r.State == FormationMember {
			memberSeen = true
		}
	}
	if !memberSeen && len(promisers) >= ck.opts.BootstrapExpect {
		f.mu.Lock()
		inTime := time.Since(sent) < ttl/2 && f.phase == FormationWaiting
		if inTime {
			f.phase, f.members = FormationFounding, members
		}
		f.mu.Unlock()
		if inTime {
			slices.Sort(promisers)
			ck.log.Info("bootstrapping a new cluster", "promised_by", strings.Join(promisers, ","),
				"bootstrap_expect", ck.opts.BootstrapExpect)
			if err := rn.bootstrap(ck.opts); err != nil {
				return false, false, err
			}
			f.mu.Lock()
			f.promise, f.seen = nil, nil
			f.mu.Unlock()
			return true, false, nil
		}
	}
	if len(granted) > 0 {
		ck.log.Debug("not enough promises to found the cluster", "promised_by", promisers,
			"bootstrap_expect", ck.opts.BootstrapExpect)
		rel := req
		rel.Release = true
		ck.askPromises(ctx, granted, rel)
	}
	f.mu.Lock()
	if f.promise != nil && f.promise.Founder == self {
		f.promise = nil
	}
	f.mu.Unlock()
	return false, memberSeen, nil
}

// addFoundingMembers runs on the founder's controller before the cluster's
// first table: it adds the nodes that promised to wait for it, so that the
// first table places partitions on all of them at once, where each join
// after it would move partitions to the new node. A node it could not add
// because this node is not the leader (any more) is tried again at the
// next step, while the table is still the first; a node the cluster
// refuses, and every node once the first table is committed or another
// node leads, joins on its own, as any node does. added reports whether it
// committed a change.
func (ck *ClusterKit) addFoundingMembers(st *state.State) (added bool) {
	f := &ck.formation
	f.mu.Lock()
	members := f.members
	f.mu.Unlock()
	var again []JoinRequest
	for _, req := range members {
		if _, ok := st.Nodes[req.ID]; ok {
			continue
		}
		_, err := ck.addMember(req)
		switch {
		case err == nil:
			added = true
		case errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader):
			again = append(again, req)
		default:
			ck.log.Warn("cannot add a founding member: it joins on its own", "node", req.ID, "err", err)
		}
	}
	f.mu.Lock()
	f.members = again
	f.mu.Unlock()
	return added
}

// askPromises sends req to every peer at once; a nil reply is a peer that
// did not answer in time.
func (ck *ClusterKit) askPromises(ctx context.Context, peers []FormationStatus, req PromiseRequest) []*PromiseResponse {
	ctx, cancel := context.WithTimeout(ctx, ck.opts.formationTimeout())
	defer cancel()
	replies := make([]*PromiseResponse, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			var r PromiseResponse
			if err := ck.post(ctx, p.HTTPAddr, "/cluster/formation", req, &r); err == nil {
				replies[i] = &r
			}
		})
	}
	wg.Wait()
	return replies
}

// waitLog keeps the waiting message to one line when what the node sees
// changes (at most one a second) and one every 10 seconds otherwise.
type waitLog struct {
	last time.Time
	key  string
}

func (ck *ClusterKit) logWaiting(wl *waitLog, others []string, founderUp bool) {
	f := &ck.formation
	f.mu.Lock()
	seen := strings.Join(f.seen, ", ")
	var promisedTo string
	if f.promise != nil && f.promise.Founder != ck.opts.NodeID {
		promisedTo = f.promise.Founder
	}
	f.mu.Unlock()
	key := seen + "|" + promisedTo + "|" + strings.Join(others, ",")
	now := time.Now()
	if since := now.Sub(wl.last); since < 10*time.Second && (key == wl.key || since < time.Second) {
		return
	}
	wl.last, wl.key = now, key
	args := []any{}
	if promisedTo != "" {
		args = append(args, "promised_to", promisedTo)
		if !founderUp {
			args = append(args, "founder_answers", false)
		}
	}
	if len(others) > 0 {
		args = append(args, "not_counted", strings.Join(others, "; "))
	}
	ck.log.Info(fmt.Sprintf("waiting for %d of %d nodes to form a cluster: seen %s",
		ck.opts.BootstrapExpect, ck.opts.formationNodes, seen), args...)
}
