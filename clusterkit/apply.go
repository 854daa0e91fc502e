package clusterkit

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"clusterkit.dev/clusterkit/internal/state"
)

// apply proposes cmd through raft and waits for it to be applied. It must
// run on the leader. The error is the FSM's when the command was committed
// but refused, ErrNotLeader when leadership was lost (the command may or
// may not have been committed), or raft's.
func (ck *ClusterKit) apply(cmd state.Command) (applyResult, error) {
	rn := ck.raftNode()
	if rn == nil {
		return applyResult{}, ErrNotStarted
	}
	b, err := cmd.Encode()
	if err != nil {
		return applyResult{}, err
	}
	start := time.Now()
	f := rn.Apply(b, ck.opts.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return applyResult{}, fmt.Errorf("%s: %w", cmd.Op, ErrNotLeader)
		}
		return applyResult{}, fmt.Errorf("%s: %w", cmd.Op, err)
	}
	ck.metrics.applyDuration.Observe(time.Since(start).Seconds())
	res, _ := f.Response().(applyResult)
	if res.err != nil {
		return res, fmt.Errorf("%s: %w", cmd.Op, res.err)
	}
	return res, nil
}
