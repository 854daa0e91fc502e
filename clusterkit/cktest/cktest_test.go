package cktest_test

import (
	"net"
	"testing"

	"clusterkit.dev/clusterkit/cktest"
)

// A member whose picked port was taken before it started moves to other
// ports instead of failing the test.
func TestMemberMovesOffATakenPort(t *testing.T) {
	c := cktest.NewStopped(t, 2)
	taken := c.Member(1).Options.HTTPAddr
	ln, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // refuse at once whoever dials the old address
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	c.StartAll()
	c.WaitConverged()
	if got := c.Member(1).Options.HTTPAddr; got == taken {
		t.Fatalf("member 1 still at the taken %s", got)
	}
}
