package server

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The bbolt layout of a partition (see Store): its buckets, its records,
// its index entries, its cursors and its fence.

// partitionPrefix starts the name of a partition's bucket.
const partitionPrefix = "partition-"

// partitionName is the name of partition p's bucket.
func partitionName(p int) []byte { return []byte(partitionPrefix + strconv.Itoa(p)) }

func parsePartitionName(name []byte) (int, bool) {
	n, ok := strings.CutPrefix(string(name), partitionPrefix)
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(n)
	return p, err == nil && p >= 0
}

// pbucket is one partition's buckets inside a transaction.
type pbucket struct {
	b                    *bolt.Bucket
	data, index, cursors *bolt.Bucket
}

// partition returns partition p's buckets, or nil when the store has no
// data for p and create is false (or the transaction is read-only).
func partition(tx *bolt.Tx, p int, create bool) (*pbucket, error) {
	name := partitionName(p)
	b := tx.Bucket(name)
	if b == nil {
		if !create || !tx.Writable() {
			return nil, nil
		}
		var err error
		if b, err = tx.CreateBucket(name); err != nil {
			return nil, err
		}
		for _, sub := range [][]byte{bucketData, bucketIndex, bucketCursors} {
			if _, err := b.CreateBucket(sub); err != nil {
				return nil, err
			}
		}
	}
	pb := &pbucket{b: b, data: b.Bucket(bucketData), index: b.Bucket(bucketIndex), cursors: b.Bucket(bucketCursors)}
	if pb.data == nil || pb.index == nil || pb.cursors == nil {
		return nil, fmt.Errorf("partition bucket %s: %w", name, errCorrupt)
	}
	return pb, nil
}

// get returns key's stored record.
func (pb *pbucket) get(key string) (stored, bool, error) {
	b := pb.data.Get([]byte(key))
	if b == nil {
		return stored{}, false, nil
	}
	s, err := decodeStored(key, b)
	return s, err == nil, err
}

// put applies an opPut: it stores the record and moves the key's index
// entry to the record's local sequence number.
func (pb *pbucket) put(op *walOp) error {
	st := &op.rec
	key := []byte(st.Key)
	prev := op.prev
	if !op.prevKnown {
		prev = 0
		if b := pb.data.Get(key); b != nil {
			h, err := decodeHeader(b)
			if err != nil {
				return fmt.Errorf("key %q: %w", st.Key, err)
			}
			prev = h.local
		}
	}
	if prev != 0 {
		if err := pb.index.Delete(u64(prev)); err != nil {
			return err
		}
	}
	entry := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(entry, uint64(op.at))
	copy(entry[8:], key)
	if err := pb.index.Put(u64(st.local), entry); err != nil {
		return err
	}
	return pb.data.Put(key, st.encode())
}

// Cursor is the fact "this node holds every record of Node's index (in
// its store incarnation Inc) up to Seq" for one partition.
type Cursor struct {
	Node string
	Inc  uint64
	Seq  uint64
}

// cursorKey is node ID + 0 + incarnation.
func cursorKey(node string, inc uint64) []byte {
	k := make([]byte, 0, len(node)+9)
	k = append(k, node...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, inc)
}

// cursor returns the partition's cursor for (node, inc), and whether it
// has one.
func (pb *pbucket) cursor(node string, inc uint64) (uint64, bool) {
	b := pb.cursors.Get(cursorKey(node, inc))
	if len(b) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// advance raises the cursor of (node, inc) to seq, creating it if needed.
func (pb *pbucket) advance(c Cursor) error {
	if cur, ok := pb.cursor(c.Node, c.Inc); c.Node == "" || (ok && c.Seq <= cur) {
		return nil
	}
	return pb.cursors.Put(cursorKey(c.Node, c.Inc), u64(c.Seq))
}

// allCursors lists the partition's cursors.
func (pb *pbucket) allCursors() []Cursor {
	var out []Cursor
	_ = pb.cursors.ForEach(func(k, v []byte) error {
		if len(k) < 9 || len(v) != 8 || k[len(k)-9] != 0 {
			return nil
		}
		out = append(out, Cursor{Node: string(k[:len(k)-9]), Inc: binary.BigEndian.Uint64(k[len(k)-8:]), Seq: binary.BigEndian.Uint64(v)})
		return nil
	})
	return out
}

// fence returns the highest epoch a replication batch was accepted from.
func (pb *pbucket) fence() uint64 {
	if b := pb.b.Get(keyFence); len(b) == 8 {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (pb *pbucket) raiseFence(epoch uint64) error {
	if epoch <= pb.fence() {
		return nil
	}
	return pb.b.Put(keyFence, u64(epoch))
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
