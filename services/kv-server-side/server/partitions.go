package server

import (
	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kit/migrate"
)

// servable reports whether this node may answer reads of a partition in
// state st as its primary: it holds the partition's data and has caught
// up from the other owners since it was made primary.
func servable(st migrate.State) bool {
	return st.Filled && !st.CatchingUp && st.Role == clusterkit.RolePrimary
}
