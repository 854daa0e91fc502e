package dashboards

// service is one KV service's metrics: the same things under its own
// prefix, and the few names that differ.
type service struct {
	// prefix starts every metric name of the service: kvsync.
	prefix string
	// migrations counts partition copies into a node, by kind and result.
	migrations string
	// dropped counts partitions a node deleted after losing them.
	dropped string
}

var (
	kvSync       = service{prefix: "kvsync", migrations: "migrations_total", dropped: "partitions_dropped_total"}
	kvAsync      = service{prefix: "kvasync", migrations: "migrated_partitions_total", dropped: "dropped_partitions_total"}
	kvServerSide = service{prefix: "kvss", migrations: "migrations_total", dropped: "partitions_dropped_total"}

	allServices = []service{kvSync, kvAsync, kvServerSide}
	// copying are the services that time their partition copies and count
	// the bytes they stream to others' copies.
	copying = []service{kvSync, kvServerSide}
)

func (s service) metric(name string) string { return s.prefix + "_" + name }

// each makes one target per service.
func each(services []service, f func(service) target) []target {
	out := make([]target, 0, len(services))
	for _, s := range services {
		out = append(out, f(s))
	}
	return out
}

// clientOps selects the KV API's operations: kv-async counts its
// node-to-node endpoints (replicate, stream) in the same metric.
var clientOps = in("op", "set", "get", "delete", "batch")

// requests are the KV API requests the nodes answered per second.
func requests(s service, by []string) string {
	return counted(s, "requests_total", by, clientOps)
}

// failures are the requests per second that did not succeed; a read of a
// missing key (not_found) is an answer, not an error.
func failures(s service, by []string) string {
	return counted(s, "requests_total", by, notIn("result", "ok", "not_found"))
}

// latency is the q-quantile of the time to answer a KV API request.
func latency(s service, q float64, by []string) string {
	return quantile(q, s.metric("request_duration_seconds"), by, clientOps)
}

// counted is the per-second rate of a counter of the service, by the labels.
func counted(s service, counter string, by []string, matchers ...string) string {
	return sumBy(by, rate(sel(s.metric(counter), matchers...)))
}

// lagGauge is the age of the oldest write a node has not yet had
// acknowledged by an owner, the worst over the owners: kv-sync's
// coordinator and kv-async's primary export it as a gauge.
func lagGauge(s service) target {
	return q(maxBy(perNode, sel(s.metric("replication_lag_seconds"))), legend(perNode))
}

// lagOperations are the acknowledged writes whose copy to an owner is still
// running, summed over the owners.
func lagOperations(s service) target {
	return q(sumBy(perNode, sel(s.metric("replication_lag_operations"))), legend(perNode))
}

func strategiesBoard() board {
	return board{
		uid:   "clusterkit-strategies",
		title: "ClusterKit strategies",
		file:  "strategies.json",
		help:  "The three KV services side by side, from their own metrics (kvsync_, kvasync_, kvss_): requests, latency, errors, replication and migration, per strategy and per node.",
		rows: []row{
			{"Throughput", []panel{
				graph("Requests/s by operation", "reqps", "KV API requests answered by the nodes. kv-sync: the client sends its quorum reads and writes to every owner, mostly as batch requests; kv-async: the client batches writes to the primary; kv-server-side: a request a node forwards counts on that node (role forward) and on the primary.",
					each(allServices, func(s service) target {
						return q(requests(s, with(perStrategy, "op")), legend(perStrategy, "{{op}}"))
					})...),
				graph("Requests/s by role", "reqps", "KV API requests by how the node served them. kv-sync: replica (part of a client's quorum) or coordinator (a quorum run by the node); kv-async: the node's role for the key's partition; kv-server-side: primary, forward, fallback (read from the replicas) or local.",
					each(allServices, func(s service) target {
						return q(requests(s, with(perStrategy, "role")), legend(perStrategy, "{{role}}"))
					})...),
				graph("Requests/s per node", "reqps", "KV API requests answered by each node.",
					each(allServices, func(s service) target { return q(requests(s, perNode), legend(perNode)) })...),
				graph("Operations in batches/s", "ops", "Operations carried by batch requests: kv-sync replica reads and writes, kv-async writes by operation, kv-server-side requests forwarded to a primary by kind.",
					q(counted(kvSync, "batch_ops_sum", perStrategy), legend(perStrategy)),
					q(counted(kvAsync, "batch_ops_total", with(perStrategy, "op")), legend(perStrategy, "{{op}}")),
					q(counted(kvServerSide, "forward_batch_ops_sum", with(perStrategy, "kind")), legend(perStrategy, "forwarded {{kind}}"))),
				graph("Operations per batch", "short", "Mean operations per batch request: kv-sync replica batches, kv-server-side forwarded batches and replication requests.",
					q(mean(kvSync.metric("batch_ops"), perStrategy), legend(perStrategy)),
					q(mean(kvServerSide.metric("forward_batch_ops"), with(perStrategy, "kind")), legend(perStrategy, "forwarded {{kind}}")),
					q(mean(kvServerSide.metric("replication_batch_records"), perStrategy), legend(perStrategy, "replication"))),
			}},
			{"Latency", []panel{
				graph("Latency p50 and p99", "s", "Time a node takes to answer a KV API request (for kv-server-side, forwarding and replication included).",
					func() []target {
						var out []target
						for _, s := range allServices {
							out = append(out,
								q(latency(s, 0.5, perStrategy), legend(perStrategy, "p50")),
								q(latency(s, 0.99, perStrategy), legend(perStrategy, "p99")))
						}
						return out
					}()...),
				graph("Latency p99 by operation", "s", "99th percentile of the time to answer, by operation.",
					each(allServices, func(s service) target {
						return q(latency(s, 0.99, with(perStrategy, "op")), legend(perStrategy, "{{op}}"))
					})...),
				graph("Latency p99 per node", "s", "99th percentile of the time each node takes to answer.",
					each(allServices, func(s service) target { return q(latency(s, 0.99, perNode), legend(perNode)) })...),
			}},
			{"Errors", []panel{
				graph("Errors/s by kind", "reqps", "Requests that failed, by result: bad_request, too_large, not_owner (the client's map was stale), unavailable, error.",
					each(allServices, func(s service) target {
						return q(failures(s, with(perStrategy, "result")), legend(perStrategy, "{{result}}"))
					})...),
				graph("Errors/s per node", "reqps", "Requests that failed, per node.",
					each(allServices, func(s service) target { return q(failures(s, perNode), legend(perNode)) })...),
				graph("Replication failures/s", "ops", "kv-sync: acknowledged writes an owner failed to store; kv-async: replication requests that failed and partition sections a replica refused, by reason; kv-server-side: replicated writes that did not succeed, by result.",
					q(counted(kvSync, "replication_missed_writes_total", perStrategy), legend(perStrategy, "missed writes")),
					q(counted(kvAsync, "replication_batches_total", with(perStrategy, "result"), isNot("result", "ok")), legend(perStrategy, "batches {{result}}")),
					q(counted(kvAsync, "replication_sections_refused_total", with(perStrategy, "reason")), legend(perStrategy, "refused {{reason}}")),
					q(counted(kvServerSide, "replication_records_total", with(perStrategy, "result"), isNot("result", "ok")), legend(perStrategy, "records {{result}}"))),
			}},
			{"Replication", []panel{
				graph("Replication lag per node", "s", "kv-sync (the node as coordinator) and kv-async (the node as primary): age of the oldest acknowledged write an owner has not yet confirmed, the worst owner; kv-server-side: 99th percentile of the time from a write's commit on the primary to its acknowledgement by another owner.",
					lagGauge(kvSync),
					lagGauge(kvAsync),
					q(quantile(0.99, kvServerSide.metric("replication_lag_seconds"), perNode), legend(perNode, "p99"))),
				graph("Replication backlog per node", "short", "Acknowledged writes whose copy to another owner is still running (kv-sync, kv-async), and writes committed on a kv-server-side primary not yet acknowledged by another owner.",
					lagOperations(kvSync),
					lagOperations(kvAsync),
					q(sumBy(perNode, sel(kvServerSide.metric("replication_pending"))), legend(perNode))),
				graph("Replicated records/s per node", "ops", "Writes a primary shipped to other owners and had acknowledged (kv-async), or sent with success (kv-server-side).",
					q(counted(kvAsync, "replication_records_sent_total", perNode), legend(perNode)),
					q(counted(kvServerSide, "replication_records_total", perNode, is("result", "ok")), legend(perNode))),
			}},
			{"Migration", []panel{
				graph("Partition copies by kind and result", "short", "Partition copies into the nodes per rate interval: copy (a gained partition) or catchup (after a promotion or restart), ok or error.",
					each(allServices, func(s service) target {
						return q(sumBy(with(perStrategy, "kind", "result"), increase(sel(s.metric(s.migrations)))), legend(perStrategy, "{{kind}} {{result}}"))
					})...),
				graph("Migrated bytes/s per node", "Bps", "Key and value bytes each node received by partition copies.",
					each(allServices, func(s service) target { return q(counted(s, "migrated_bytes_total", perNode), legend(perNode)) })...),
				graph("Migrated records/s per node", "ops", "Records each node received by partition copies.",
					each(allServices, func(s service) target { return q(counted(s, "migrated_records_total", perNode), legend(perNode)) })...),
				graph("Streamed bytes/s per node", "Bps", "Key and value bytes each node sent to other nodes copying its partitions (kv-sync, kv-server-side).",
					each(copying, func(s service) target { return q(counted(s, "streamed_bytes_total", perNode), legend(perNode)) })...),
				graph("Partition copy duration p99", "s", "99th percentile of the time to copy one partition from one source (kv-sync, kv-server-side).",
					each(copying, func(s service) target {
						return q(quantile(0.99, s.metric("migration_duration_seconds"), perStrategy), legend(perStrategy, "p99"))
					})...),
				graph("Dropped partitions", "short", "Partitions whose data a node deleted after losing them, per rate interval.",
					each(allServices, func(s service) target {
						return q(sumBy(perStrategy, increase(sel(s.metric(s.dropped)))), legend(perStrategy))
					})...),
			}},
			{"Write path", []panel{
				graph("kv-async store fsync duration", "s", "99th percentile of one fsync of kv-async's store log made by its sync window (SYNC_WINDOW): every write acknowledged before it is then durable.",
					q(quantile(0.99, kvAsync.metric("wal_sync_duration_seconds"), perStrategy), legend(perStrategy, "store fsync p99"))),
				graph("kv-sync stale writes/s", "ops", "Versioned writes a replica did not store because it already held a newer version (acknowledged all the same).",
					q(counted(kvSync, "stale_writes_total", perStrategy), legend(perStrategy))),
			}},
		},
	}
}
