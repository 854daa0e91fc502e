package wire

// Routing protocol shared by the client SDK and services built on
// ClusterKit. A service that receives a request for a partition it does not
// own (or that its map says belongs elsewhere) answers StatusNotOwner with a
// NotOwnerBody, and sets HeaderMapVersion on every answer; a client whose map
// is older refreshes it and retries once.
const (
	// HeaderMapVersion carries the sender's map version (decimal).
	HeaderMapVersion = "X-Clusterkit-Map-Version"
	// HeaderEpoch carries a partition epoch (decimal), for fencing.
	HeaderEpoch = "X-Clusterkit-Epoch"
	// StatusNotOwner is the status of a request sent to a node that does
	// not own the key's partition in the role the request needs.
	StatusNotOwner = 421 // http.StatusMisdirectedRequest
)

// NotOwnerBody is the JSON body of a StatusNotOwner answer.
type NotOwnerBody struct {
	Error string `json:"error"`
	// MapVersion is the answering node's map version.
	MapVersion uint64 `json:"map_version"`
	// Partition is the key's partition number.
	Partition int `json:"partition"`
	// Primary is the node the answering node believes is primary, if any.
	Primary string `json:"primary,omitempty"`
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}
