package clusterkit

// Snapshot makes raft take a snapshot now, so that a test can restart a
// node from a snapshot and a truncated log.
func (ck *ClusterKit) Snapshot() error {
	return ck.raftNode().Snapshot().Error()
}
