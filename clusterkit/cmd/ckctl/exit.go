package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"clusterkit.dev/clusterkit/client"
)

// Exit statuses; the package documentation lists them for users.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitRefused     = 4
	exitUnhealthy   = 5
	exitTimeout     = 6
)

// exitErr carries the exit status of a failed command.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the exit status scripts see.
func exitCode(err error) int {
	var ee *exitErr
	if errors.As(err, &ee) {
		return ee.code
	}
	switch code := client.StatusCode(err); {
	case code == http.StatusServiceUnavailable:
		return exitUnavailable
	case code >= 400 && code < 500:
		return exitRefused
	case code != 0:
		return exitError
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return exitUnavailable
	}
	return exitError
}
