package client

import (
	"context"
	"io"

	"clusterkit.dev/clusterkit"
	ckclient "clusterkit.dev/clusterkit/client"
	"clusterkit.dev/services/kv-sync/internal/batch"
)

// readReplica returns node's record of key.
func (c *Client) readReplica(ctx context.Context, r ckclient.Route, node clusterkit.Node, key string) (record, error) {
	res, _, err := c.node(node.IP, batch.OpRead).do(ctx, batch.Op{Kind: batch.OpRead, Key: key}, r)
	if err != nil || res.Status != batch.StatusFound {
		return record{}, err
	}
	return record{
		value:   string(res.Value),
		version: Version{Counter: res.Counter, Writer: res.Writer},
		deleted: res.Deleted,
		found:   true,
	}, nil
}

// writeReplica sends rec to node, which stores it unless it holds a newer
// version, and returns the node's map version.
func (c *Client) writeReplica(ctx context.Context, r ckclient.Route, node clusterkit.Node, key string, rec record) (uint64, error) {
	op := batch.Op{Kind: batch.OpWrite, Key: key, Counter: rec.version.Counter, Writer: rec.version.Writer, Deleted: rec.deleted}
	if !rec.deleted {
		op.Value = []byte(rec.value)
	}
	_, nodeVersion, err := c.node(node.IP, batch.OpWrite).do(ctx, op, r)
	return nodeVersion, err
}

// drain reads what is left of a body, so that its connection is reused,
// and closes it.
func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	b.Close()
}
