package store

import (
	"testing"

	"clusterkit.dev/services/kit/records"
)

func TestVersionOrder(t *testing.T) {
	if err := records.CheckOrder([]Version{{}, {0, 1}, {1, 0}, {1, 1}, {1, 9}, {2, 1}}); err != nil {
		t.Error(err)
	}
	if s := (Version{3, 14}).String(); s != "3.14" {
		t.Errorf("String() = %q", s)
	}
}
