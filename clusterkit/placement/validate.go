package placement

import (
	"fmt"
	"math"
)

// Validate reports whether c can be used by Compute. The error names the
// offending field.
func (c Config) Validate() error {
	switch {
	case c.Partitions <= 0:
		return fmt.Errorf("placement: Config.Partitions must be positive, got %d", c.Partitions)
	case c.Partitions > math.MaxInt32:
		return fmt.Errorf("placement: Config.Partitions must be at most %d, got %d", math.MaxInt32, c.Partitions)
	case c.ReplicationFactor <= 0:
		return fmt.Errorf("placement: Config.ReplicationFactor must be positive, got %d", c.ReplicationFactor)
	}
	return nil
}

// validateNodes checks IDs and weights. The error names the offending
// element and field.
func validateNodes(nodes []Node) error {
	seen := make(map[string]int, len(nodes))
	for i, n := range nodes {
		if n.ID == "" {
			return fmt.Errorf("placement: nodes[%d].ID is empty", i)
		}
		if j, dup := seen[n.ID]; dup {
			return fmt.Errorf("placement: nodes[%d].ID %q duplicates nodes[%d].ID", i, n.ID, j)
		}
		seen[n.ID] = i
		if n.Weight < 0 {
			return fmt.Errorf("placement: nodes[%d].Weight must not be negative, got %d", i, n.Weight)
		}
		if n.Weight > MaxWeight {
			return fmt.Errorf("placement: nodes[%d].Weight must be at most %d, got %d", i, MaxWeight, n.Weight)
		}
	}
	return nil
}

// validatePrev checks that prev is empty or has one entry per partition.
func validatePrev(prev Table, cfg Config) error {
	if len(prev) != 0 && len(prev) != cfg.Partitions {
		return fmt.Errorf("placement: prev has %d partitions, want 0 or Config.Partitions (%d)", len(prev), cfg.Partitions)
	}
	return nil
}
