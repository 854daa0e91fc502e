package client

import (
	"io"

	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

// askRead queues a read of key for node; its answer arrives on done with
// tag.
func (c *Client) askRead(r ckclient.Route, node wire.Node, key string, tag int, done chan<- callResult) {
	c.node(node.IP, batch.OpRead).send(&call{op: batch.Op{Kind: batch.OpRead, Key: key},
		mapVersion: r.MapVersion, tag: tag, done: done})
}

// askWrite queues rec for node, which stores it unless it holds a newer
// version; the answer, with the node's map version, arrives on done with
// tag, and then, when track is not nil, goes to track.
func (c *Client) askWrite(r ckclient.Route, node wire.Node, key string, rec record, tag int, done chan<- callResult, track *writeTrack) {
	op := batch.Op{Kind: batch.OpWrite, Key: key, Counter: rec.version.Counter, Writer: rec.version.Writer, Deleted: rec.deleted}
	if !rec.deleted {
		op.Value = []byte(rec.value)
	}
	c.node(node.IP, batch.OpWrite).send(&call{op: op, mapVersion: r.MapVersion, tag: tag, done: done, track: track})
}

// readRecord turns the answer to a read into a record.
func readRecord(res batch.Result) record {
	if res.Status != batch.StatusFound {
		return record{}
	}
	return record{
		value:   string(res.Value),
		version: Version{Counter: res.Counter, Writer: res.Writer},
		deleted: res.Deleted,
		found:   true,
	}
}

// drain reads what is left of a body, so that its connection is reused,
// and closes it.
func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}
