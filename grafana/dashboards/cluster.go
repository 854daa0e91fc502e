package dashboards

import "strings"

// legend names a series by the labels of a grouping, then words.
func legend(by []string, words ...string) string {
	parts := make([]string, 0, len(by)+len(words))
	for _, l := range by {
		parts = append(parts, "{{"+l+"}}")
	}
	return strings.Join(append(parts, words...), " ")
}

// gauge is the clusterkit_ gauge name, the highest value any node reports,
// per strategy. The cluster-wide gauges (map version, partitions, health)
// are each node's view of the same map: the highest is the newest view, and
// for a problem count the most alarmed node.
func gauge(name string, by []string) target {
	return q(maxBy(by, sel("clusterkit_"+name)), legend(by))
}

// perNodeGauge is the clusterkit_ gauge name as each node reports it.
func perNodeGauge(name string) target {
	return q(sel("clusterkit_"+name), legend(perNode))
}

// quantiles are the median and the 99th percentile of a histogram.
func quantiles(metric string, by []string, matchers ...string) []target {
	return []target{
		q(quantile(0.5, metric, by, matchers...), legend(by, "p50")),
		q(quantile(0.99, metric, by, matchers...), legend(by, "p99")),
	}
}

func clusterBoard() board {
	return board{
		uid:   "clusterkit-cluster",
		title: "ClusterKit cluster",
		file:  "cluster.json",
		help:  "Membership, partition map, handoffs, failovers and raft of each strategy's cluster, from the clusterkit_ metrics every node exports.",
		rows: []row{
			{"Overview", []panel{
				single("Nodes scraped", "short", "Nodes whose /metrics Prometheus scraped at its last attempt (up == 1), per strategy.",
					q(sumBy(perStrategy, sel("up")), legend(perStrategy))).wide(6),
				single("Leader", "", "The node that is raft leader, per strategy.",
					q(equals(sel("clusterkit_is_leader"), 1), "{{strategy}}: {{node}}")).naming().wide(6),
				single("Raft term", "short", "Highest raft term any node reports.",
					gauge("raft_term", perStrategy)).wide(6),
				single("Map version", "short", "Newest version of the cluster map any node has applied.",
					gauge("map_version", perStrategy)).wide(6),
				single("Partitions", "short", "Partition count of the cluster.",
					gauge("partitions", perStrategy)).wide(6),
				single("Raft servers", "short", "Raft servers by suffrage: few voters, every other node a non-voter.",
					gauge("raft_servers", with(perStrategy, "suffrage"))).wide(6),
				single("Under-replicated partitions", "short", "Partitions with fewer live ready owners than min(replication factor, live nodes); should be 0.",
					gauge("partitions_under_replicated", perStrategy)).alarming().wide(6),
				single("Partitions without a live primary", "short", "Partitions whose primary is missing, suspect or dead; should be 0.",
					gauge("partitions_without_live_primary", perStrategy)).alarming().wide(6),
				single("Moves in flight", "short", "Make-before-break handoffs in progress: a new owner copying a partition.",
					gauge("moves_in_flight", perStrategy)).wide(6),
				single("Nodes draining", "short", "Members being drained of their partitions before they leave.",
					gauge("nodes_draining", perStrategy)).wide(6),
			}},
			{"Membership", []panel{
				graph("Members by state", "short", "Cluster members by state (alive, suspect, dead), as the node with the most in each state sees them.",
					gauge("nodes", with(perStrategy, "state"))),
				graph("Node deaths", "short", "Members declared dead, per rate interval, by the leader of the time.",
					q(sumBy(perStrategy, increase(sel("clusterkit_node_deaths_total"))), legend(perStrategy, "deaths"))),
				graph("Joins and leaves", "short", "Nodes added and removed, per rate interval, by the leader of the time.",
					q(sumBy(perStrategy, increase(sel("clusterkit_joins_total"))), legend(perStrategy, "joins")),
					q(sumBy(perStrategy, increase(sel("clusterkit_leaves_total"))), legend(perStrategy, "leaves"))),
				graph("Map version per node", "short", "Version of the cluster map each node has applied: a node behind the others has not caught up.",
					perNodeGauge("map_version")),
			}},
			{"Partitions", []panel{
				bars("Primaries per node", "short", "Partitions each node is primary of: placement balances them.",
					q(sel("clusterkit_partitions_owned", is("role", "primary")), legend(perNode))),
				bars("Replicas per node", "short", "Partitions each node is a replica of.",
					q(sel("clusterkit_partitions_owned", is("role", "replica")), legend(perNode))),
			}},
			{"Handoffs and failovers", []panel{
				graph("Handoffs/s by result", "ops", "Make-before-break handoffs ended by the leader: completed (the new owner reported ready), timeout (the deadline passed), replanned.",
					q(sumBy(with(perStrategy, "result"), rate(sel("clusterkit_handoffs_total"))), legend(perStrategy, "{{result}}"))),
				graph("Handoff duration", "s", "From the start of a handoff to the new owner's ready report.",
					quantiles("clusterkit_handoff_duration_seconds", perStrategy)...),
				graph("Failovers", "short", "Partitions whose dead primary was replaced by an in-sync replica, per rate interval.",
					q(sumBy(perStrategy, increase(sel("clusterkit_failovers_total"))), legend(perStrategy, "failovers"))),
				graph("Failover duration", "s", "From the dead primary's last contact to the commit of its replacement.",
					quantiles("clusterkit_failover_duration_seconds", perStrategy)...),
				graph("Partition hooks/s by result", "ops", "Partition hook and event handler invocations on the nodes, by result (ok, error, panic).",
					q(sumBy(with(perStrategy, "result"), rate(sel("clusterkit_hook_invocations_total"))), legend(perStrategy, "{{result}}"))),
				graph("Partition hook duration p99 per node", "s", "Time the application spends in its partition hooks (a migration runs there).",
					q(quantile(0.99, "clusterkit_hook_duration_seconds", perNode), legend(perNode))),
			}},
			{"Raft", []panel{
				graph("Raft state", "short", "Nodes in each raft state: one leader, the rest followers.",
					q(sumBy(with(perStrategy, "state"), sel("clusterkit_raft_state")), legend(perStrategy, "{{state}}"))),
				graph("Raft term per node", "short", "Each node's raft term: a step is an election.",
					perNodeGauge("raft_term")),
				graph("Commit to apply lag per node", "short", "Raft log entries a node knows committed and has not yet applied to its cluster state (commit index - applied index).",
					q(difference(sel("clusterkit_raft_commit_index"), sel("clusterkit_raft_applied_index")), legend(perNode))),
				graph("Raft apply duration", "s", "Time to commit a command a node proposed (mostly the leader's).",
					quantiles("clusterkit_raft_apply_duration_seconds", perStrategy)...),
				graph("Last contact with the leader per node", "s", "Seconds since each follower last heard from the leader (0 on the leader).",
					perNodeGauge("raft_last_contact_seconds")),
			}},
			{"Resources per node", []panel{
				graph("CPU per node", "percentunit", "CPU time of each node process per second (1 = one core).",
					q(sumBy(perNode, rate(sel("process_cpu_seconds_total"))), legend(perNode))),
				graph("Resident memory per node", "bytes", "Resident set size of each node process.",
					q(sel("process_resident_memory_bytes"), legend(perNode))),
				graph("Go heap in use per node", "bytes", "Bytes in in-use spans of each node's Go heap.",
					q(sel("go_memstats_heap_inuse_bytes"), legend(perNode))),
				graph("Goroutines per node", "short", "Goroutines of each node process.",
					q(sel("go_goroutines"), legend(perNode))),
			}},
		},
	}
}
