// Package kvclient is what the services' Go clients share: their pool of
// connections to the nodes (NewTransport) and the cutting of a node's
// queue of writes into batches (TakeBatch). It depends on the standard
// library only, so that a client stays light.
package kvclient
