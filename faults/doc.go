// Package faults is ClusterKit's fault suite: it runs the three KV services
// as real processes, each node in a network namespace of its own joined by
// a bridge, drives concurrent clients through their HTTP APIs while a
// seeded nemesis crashes (SIGKILL), pauses (SIGSTOP), cuts off (iptables
// in the node's namespace), fills the disk of, adds and drains nodes, and
// checks the recorded histories against what each service promises:
// linearizable keys (kv-sync, kv-server-side with ACK=all), no lost
// acknowledged write, a bounded loss and convergence (kv-async), the
// library's invariants, and the longest time with no acknowledged write or
// read during each fault.
//
// The suite needs root (network namespaces, iptables, tmpfs mounts) and the
// `ip` and `iptables` commands. `make test-faults` runs it at length;
// `make test` runs a short seeded run.
package faults
