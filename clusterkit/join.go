package clusterkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
)

// joinRequest describes this node.
func (ck *ClusterKit) joinRequest() JoinRequest {
	o := ck.opts
	return JoinRequest{
		ID: o.NodeID, Name: o.NodeName, HTTPAddr: o.HTTPAdvertise, RaftAddr: o.RaftAdvertise,
		Zone: o.Zone, Weight: o.Weight, Meta: o.Meta,
		ClusterName: o.cfg.ClusterName, PartitionCount: o.cfg.PartitionCount,
		ReplicationFactor: o.cfg.ReplicationFactor,
	}
}

// join asks the members of the join list, in turn, to add this node, until
// one accepts, one refuses for good (4xx), a member's certificate fails
// the check against the cluster's CA, ctx ends or JoinTimeout passes.
func (ck *ClusterKit) join(ctx context.Context) error {
	if len(ck.opts.joinAddrs) == 0 {
		return &FieldError{Field: "JoinAddr", Reason: "lists only this node"}
	}
	ctx, cancel := context.WithTimeout(ctx, ck.opts.cfg.JoinTimeout)
	defer cancel()
	req := ck.joinRequest()
	var last error
	for {
		for _, addr := range ck.opts.joinAddrs {
			var resp JoinResponse
			err := ck.post(ctx, addr, "/cluster/join", req, &resp)
			if err == nil {
				ck.log.Info("joined", "via", addr, "leader", resp.LeaderID, "voter", resp.Voter,
					"partitions", resp.PartitionCount, "replication_factor", resp.ReplicationFactor)
				return nil
			}
			var he *HTTPError
			if errors.As(err, &he) && he.Code >= 400 && he.Code < 500 {
				return fmt.Errorf("join refused by %s: %w", addr, err)
			}
			var ce *tls.CertificateVerificationError
			if errors.As(err, &ce) {
				// Retrying cannot make the certificates match.
				return fmt.Errorf("join %s: %w", addr, err)
			}
			last = err
			ck.log.Debug("join attempt failed", "via", addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join: no member of JoinAddr %v accepted within %v: %w", ck.opts.joinAddrs, ck.opts.cfg.JoinTimeout, last)
		case <-time.After(ck.opts.cfg.JoinRetryInterval):
		}
	}
}

// addMember runs on the leader: it checks the request against the cluster,
// adds the node to raft (as a voter while there are fewer than MaxVoters)
// and commits it to the map. The same node joining again changes nothing.
func (ck *ClusterKit) addMember(req JoinRequest) (JoinResponse, error) {
	ck.joinMu.Lock()
	defer ck.joinMu.Unlock()
	rn := ck.raftNode()
	node := &state.Node{
		ID: req.ID, Name: req.Name, HTTPAddr: req.HTTPAddr, RaftAddr: req.RaftAddr,
		Zone: req.Zone, Weight: req.Weight, Meta: req.Meta,
	}
	if node.Name == "" {
		node.Name = defaultNodeName(node.ID)
	}
	if err := validateJoin(req); err != nil {
		return JoinResponse{}, err
	}
	var resp JoinResponse
	var already bool
	var checkErr error
	ck.fsm.read(func(st *state.State) {
		resp = JoinResponse{ClusterName: st.ClusterName, PartitionCount: st.PartitionCount,
			ReplicationFactor: st.ReplicationFactor, LeaderID: ck.opts.NodeID}
		if !st.Initialized() {
			checkErr = fmt.Errorf("cluster settings not committed yet: %w", ErrNoLeader)
			return
		}
		if checkErr = settingsConflict(req, st); checkErr != nil {
			return
		}
		already, checkErr = st.CheckJoin(node)
	})
	if checkErr != nil {
		return resp, checkErr
	}
	resp.AlreadyMember = already

	servers, err := rn.configuration()
	if err != nil {
		return resp, fmt.Errorf("read raft configuration: %w", err)
	}
	voters, inRaft := 0, false
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if s.ID == raft.ServerID(req.ID) {
			inRaft = true
			resp.Voter = s.Suffrage == raft.Voter
			if s.Address != raft.ServerAddress(req.RaftAddr) {
				return resp, fmt.Errorf("%w: raft server %q is at %s, not %s", ErrConflict, req.ID, s.Address, req.RaftAddr)
			}
		} else if s.Address == raft.ServerAddress(req.RaftAddr) {
			return resp, fmt.Errorf("%w: raft address %s is taken by server %q", ErrConflict, req.RaftAddr, s.ID)
		}
	}
	if !inRaft {
		var f raft.IndexFuture
		if voters < ck.opts.cfg.MaxVoters {
			f = rn.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, ck.opts.cfg.ApplyTimeout)
			resp.Voter = true
		} else {
			f = rn.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, ck.opts.cfg.ApplyTimeout)
		}
		if err := f.Error(); err != nil {
			return resp, fmt.Errorf("add raft server %q: %w", req.ID, raftErr(err))
		}
	}
	res, err := ck.apply(state.Command{Op: state.OpJoin, Node: node})
	if err != nil {
		return resp, err
	}
	if req.ID != ck.opts.NodeID {
		ck.detector.heard(req.ID, time.Now())
	}
	if res.changed && !already {
		ck.metrics.joins.Inc()
		ck.log.Info("node joined", "joiner", req.ID, "voter", resp.Voter, "version", res.version)
	}
	return resp, nil
}

// removeMember runs on the leader: it removes the node from the map (its
// partitions go to other owners) and then from raft. Removing a node that is
// not a member changes nothing.
func (ck *ClusterKit) removeMember(id string) error {
	ck.joinMu.Lock()
	defer ck.joinMu.Unlock()
	if id == ck.opts.NodeID {
		return fmt.Errorf("%w: the leader cannot remove itself; transfer leadership first", ErrConflict)
	}
	res, err := ck.apply(state.Command{Op: state.OpRemove, NodeID: id, At: time.Now().UnixMilli()})
	if err != nil {
		return err
	}
	if err := ck.raftNode().RemoveServer(raft.ServerID(id), 0, ck.opts.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("remove raft server %q: %w", id, raftErr(err))
	}
	if res.changed {
		ck.metrics.leaves.Inc()
		ck.log.Info("node left", "leaver", id, "version", res.version)
	}
	return nil
}

func validateJoin(req JoinRequest) error {
	switch {
	case req.ID == "":
		return &FieldError{Field: "id", Reason: "required"}
	case !validID(req.ID):
		return &FieldError{Field: "id", Reason: fmt.Sprintf("%q: use letters, digits, '-', '_' and '.'", req.ID)}
	case req.Weight < 0 || req.Weight > MaxWeight:
		return &FieldError{Field: "weight", Reason: fmt.Sprintf("%d is outside 1 to %d", req.Weight, MaxWeight)}
	}
	if err := checkDialable("http_addr", req.HTTPAddr); err != nil {
		return err
	}
	return checkDialable("raft_addr", req.RaftAddr)
}

// settingsConflict names every setting in which the joiner differs from the
// cluster.
func settingsConflict(req JoinRequest, st *state.State) error {
	var diffs []string
	if req.ClusterName != "" && req.ClusterName != st.ClusterName {
		diffs = append(diffs, fmt.Sprintf("ClusterName %q differs from the cluster's %q", req.ClusterName, st.ClusterName))
	}
	if req.PartitionCount != 0 && req.PartitionCount != st.PartitionCount {
		diffs = append(diffs, fmt.Sprintf("PartitionCount %d differs from the cluster's %d", req.PartitionCount, st.PartitionCount))
	}
	if req.ReplicationFactor != 0 && req.ReplicationFactor != st.ReplicationFactor {
		diffs = append(diffs, fmt.Sprintf("ReplicationFactor %d differs from the cluster's %d", req.ReplicationFactor, st.ReplicationFactor))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConflict, strings.Join(diffs, "; "))
}

func raftErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return ErrNotLeader
	}
	return err
}

// post sends body as JSON to http://addr+path and decodes a 2xx answer
// into out. A non-2xx answer is an *HTTPError.
func (ck *ClusterKit) post(ctx context.Context, addr, path string, body, out any) error {
	return ck.postWith(ctx, addr, path, body, out, nil)
}

func (ck *ClusterKit) postWith(ctx context.Context, addr, path string, body, out any, hdr http.Header) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ck.Scheme()+"://"+addr+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	return ck.do(req, out)
}

// get fetches http://addr+path and decodes a 2xx answer into out. A
// non-2xx answer is an *HTTPError.
func (ck *ClusterKit) get(ctx context.Context, addr, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ck.Scheme()+"://"+addr+path, nil)
	if err != nil {
		return err
	}
	return ck.do(req, out)
}

// do sends req and decodes a 2xx JSON answer into out (unless out is nil).
func (ck *ClusterKit) do(req *http.Request, out any) error {
	ck.AuthorizeRequest(req)
	resp, err := ck.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = string(data)
		}
		return &HTTPError{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
