package clusterkit

import "testing"

func TestPartitionIDRoundTrip(t *testing.T) {
	for _, i := range []int{0, 1, 15, 4095} {
		got, err := ParsePartitionID(PartitionID(i))
		if err != nil || got != i {
			t.Errorf("ParsePartitionID(PartitionID(%d)) = %d, %v", i, got, err)
		}
	}
	for _, bad := range []string{"", "partition-", "partition--1", "part-1", "partition-x"} {
		if _, err := ParsePartitionID(bad); err == nil {
			t.Errorf("ParsePartitionID(%q) succeeded", bad)
		}
	}
}
