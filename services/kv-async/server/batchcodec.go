package server

import (
	"encoding/binary"
	"fmt"

	"clusterkit.dev/services/kv-async/internal/store"
)

// flagDeleted marks a tombstone in a record's flags.
const flagDeleted = 1

// The binary encoding of replication batches and their answers (the
// body of POST /kv/internal/replicate), built for the hot path: no
// reflection, and the values of a decoded batch share its buffer.
//
//	request:  format, sender, inc, map version, sections
//	section:  partition, epoch, probe, from, to, records
//	record:   flags, epoch, seq, time, key, value
//	answer:   format, map version, results
//	result:   partition, status, cursor, applied, error
//
// Integers are varints, strings and byte strings length-prefixed, lists
// count-prefixed.

// contentTypeBatch marks replication batches and their answers.
const contentTypeBatch = "application/x-kvasync-batch"

// batchFormat is the version of the encoding; a receiver refuses others.
const batchFormat = 1

// appendBatchRequest encodes req to b.
func appendBatchRequest(b []byte, req *batchRequest) []byte {
	b = binary.AppendUvarint(b, batchFormat)
	b = appendBytes(b, []byte(req.Sender))
	b = binary.AppendUvarint(b, req.Inc)
	b = binary.AppendUvarint(b, req.MapVersion)
	b = binary.AppendUvarint(b, uint64(len(req.Sections)))
	for i := range req.Sections {
		sec := &req.Sections[i]
		b = binary.AppendUvarint(b, uint64(sec.Partition))
		b = binary.AppendUvarint(b, sec.Epoch)
		probe := byte(0)
		if sec.Probe {
			probe = 1
		}
		b = append(b, probe)
		b = binary.AppendUvarint(b, sec.From)
		b = binary.AppendUvarint(b, sec.To)
		b = binary.AppendUvarint(b, uint64(len(sec.Records)))
		for j := range sec.Records {
			b = appendRecord(b, &sec.Records[j])
		}
	}
	return b
}

func appendRecord(b []byte, r *store.Record) []byte {
	var flags byte
	if r.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.Version.Epoch)
	b = binary.AppendUvarint(b, r.Version.Seq)
	b = binary.AppendVarint(b, r.Time)
	b = appendBytes(b, []byte(r.Key))
	return appendBytes(b, r.Value)
}

// decodeBatchRequest parses what appendBatchRequest wrote. The records'
// values alias b.
func decodeBatchRequest(b []byte) (*batchRequest, error) {
	d := decoder{b: b}
	if f := d.uvarint(); d.err == nil && f != batchFormat {
		return nil, fmt.Errorf("batch format %d, want %d", f, batchFormat)
	}
	req := &batchRequest{Sender: string(d.bytes()), Inc: d.uvarint(), MapVersion: d.uvarint()}
	n := d.count(4)
	req.Sections = make([]section, n)
	for i := range req.Sections {
		sec := &req.Sections[i]
		sec.Partition = d.int()
		sec.Epoch = d.uvarint()
		switch d.byte() {
		case 0:
		case 1:
			sec.Probe = true
		default:
			d.fail()
		}
		sec.From = d.uvarint()
		sec.To = d.uvarint()
		if m := d.count(5); m > 0 {
			sec.Records = make([]store.Record, m)
			for j := range sec.Records {
				d.record(&sec.Records[j])
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, fmt.Errorf("batch: %w", d.err)
	}
	return req, nil
}

func (d *decoder) record(r *store.Record) {
	flags := d.byte()
	if flags&^flagDeleted != 0 {
		d.fail()
	}
	r.Deleted = flags&flagDeleted != 0
	r.Version.Epoch = d.uvarint()
	r.Version.Seq = d.uvarint()
	r.Time = d.varint()
	r.Key = string(d.bytes())
	if v := d.bytes(); len(v) > 0 || !r.Deleted {
		r.Value = v
	}
}

// count reads a list length; each element takes at least minBytes, so
// a length the input cannot hold fails instead of allocating.
func (d *decoder) count(minBytes int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minBytes) {
		d.fail()
		return 0
	}
	return int(n)
}

// appendBatchResponse encodes resp to b.
func appendBatchResponse(b []byte, resp *batchResponse) []byte {
	b = binary.AppendUvarint(b, batchFormat)
	b = binary.AppendUvarint(b, resp.MapVersion)
	b = binary.AppendUvarint(b, uint64(len(resp.Results)))
	for i := range resp.Results {
		r := &resp.Results[i]
		b = binary.AppendUvarint(b, uint64(r.Partition))
		b = appendBytes(b, []byte(r.Status))
		b = binary.AppendUvarint(b, r.Cursor)
		b = binary.AppendUvarint(b, uint64(r.Applied))
		b = appendBytes(b, []byte(r.Error))
	}
	return b
}

// decodeBatchResponse parses what appendBatchResponse wrote.
func decodeBatchResponse(b []byte) (*batchResponse, error) {
	d := decoder{b: b}
	if f := d.uvarint(); d.err == nil && f != batchFormat {
		return nil, fmt.Errorf("batch answer format %d, want %d", f, batchFormat)
	}
	resp := &batchResponse{MapVersion: d.uvarint()}
	resp.Results = make([]sectionResult, d.count(5))
	for i := range resp.Results {
		r := &resp.Results[i]
		r.Partition = d.int()
		r.Status = string(d.bytes())
		r.Cursor = d.uvarint()
		r.Applied = d.int()
		r.Error = string(d.bytes())
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, fmt.Errorf("batch answer: %w", d.err)
	}
	return resp, nil
}
