package api

import "net/http"

// Route is one route of a service: the method it accepts and its handler.
type Route struct {
	Method string
	Handle http.HandlerFunc
}

// Routes maps paths to routes.
type Routes map[string]Route

// Find returns the handler of r's route. For a path with no route it
// answers 404, for a method the route does not accept 405 (with Allow),
// both with a JSON error and mapVersion, and returns nil.
func (rs Routes) Find(w http.ResponseWriter, r *http.Request, mapVersion uint64) http.HandlerFunc {
	rt, ok := rs[r.URL.Path]
	switch {
	case !ok:
		Write(w, mapVersion, JSON(http.StatusNotFound, errorBody{Error: "no such endpoint: " + r.URL.Path}))
		return nil
	case r.Method != rt.Method:
		w.Header().Set("Allow", rt.Method)
		Write(w, mapVersion, JSON(http.StatusMethodNotAllowed, errorBody{Error: r.URL.Path + " accepts " + rt.Method + " only"}))
		return nil
	}
	return rt.Handle
}
