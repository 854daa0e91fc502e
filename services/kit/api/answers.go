package api

// The bodies of the KV API's answers, V being the JSON form of a
// service's versions.
type (
	// Written is the body of a successful write or delete: the key and
	// the version it holds.
	Written[V any] struct {
		Key     string `json:"key"`
		Version V      `json:"version"`
	}
	// Value is the body of a successful read: the key, its value and its
	// version.
	Value[V any] struct {
		Key     string `json:"key"`
		Value   string `json:"value"`
		Version V      `json:"version"`
	}
	// ErrorBody is the body of an error answer (ErrorReply's) that may
	// carry a version: on the 404 of a read of a deleted key, its
	// tombstone's, so that a reader can compare it with other owners'
	// records.
	ErrorBody[V any] struct {
		Error   string `json:"error"`
		Version *V     `json:"version,omitempty"`
	}
)
