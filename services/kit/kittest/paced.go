package kittest

import (
	"io"
	"time"
)

// PacedReader reads from R at most Per bytes every Every: a slow client,
// to check that a node's write deadlines hold a stream open only as long
// as the reader keeps up.
type PacedReader struct {
	R     io.Reader
	Per   int
	Every time.Duration
	left  int
}

func (p *PacedReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		time.Sleep(p.Every)
		p.left = p.Per
	}
	n, err := p.R.Read(b[:min(len(b), p.left)])
	p.left -= n
	return n, err
}
