package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// runEchoServer serves the ceiling: POST /kv/set and GET /kv/get answer at
// once without storing anything, so a measurement of it is the cost of the
// HTTP round trip alone on this machine. In a container it listens on
// 0.0.0.0:8080 with -addr 0.0.0.0:8080 or HTTP_ADDR=0.0.0.0:8080.
func runEchoServer(args []string) error {
	fs := flag.NewFlagSet("echo-server", flag.ContinueOnError)
	addr := fs.String("addr", envOr("HTTP_ADDR", "127.0.0.1:0"), "listen address (default: $HTTP_ADDR, else a free port on 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// The parent reads the address from the first line.
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: echoHandler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func echoHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kv/set", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /kv/get", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"key":%q,"value":"ok"}`, r.URL.Query().Get("key"))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	return mux
}

// healthcheck asks the echo server listening on -addr's port on this host
// for GET /health, for a container's health check (a scratch image has no
// curl), and returns the exit code: 0 when it answers 200, else 1.
func healthcheck(args []string) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	addr := fs.String("addr", envOr("HTTP_ADDR", "127.0.0.1:8080"), "the echo server's listen address (default: $HTTP_ADDR, else 127.0.0.1:8080)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	_, port, err := net.SplitHostPort(*addr)
	if err != nil || port == "" {
		fmt.Fprintf(os.Stderr, "healthcheck: -addr %q: want host:port or :port\n", *addr)
		return 1
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := getJSON(context.Background(), hc, "http://"+net.JoinHostPort("127.0.0.1", port)+"/health", nil); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// envOr returns the environment variable key, or def when it is unset or
// empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
