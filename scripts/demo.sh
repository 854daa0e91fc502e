#!/usr/bin/env bash
# Starts or stops a local 3-node ClusterKit cluster (HTTP on 127.0.0.1:8080-8082,
# raft on 9080-9082), with data under .demo/. Used by `make up` / `make down`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.demo
case "${1:-}" in
up)
  mkdir -p "$dir"
  (cd clusterkit && go build -o "../$dir/quickstart" ./examples/quickstart)
  for i in 1 2 3; do
    port=$((8079 + i))
    join=""
    [ "$i" -gt 1 ] && join=127.0.0.1:8080
    NODE_ID=node-$i HTTP_ADDR=127.0.0.1:$port JOIN_ADDR=$join DATA_DIR=$dir/node-$i \
      nohup "$dir/quickstart" >"$dir/node-$i.log" 2>&1 &
    echo $! >"$dir/node-$i.pid"
    [ "$i" -eq 1 ] && sleep 1
  done
  for _ in $(seq 1 50); do
    if curl -fsS http://127.0.0.1:8082/health >/dev/null 2>&1; then
      echo "cluster up: curl http://127.0.0.1:8080/cluster  (logs in $dir/, stop with make down)"
      exit 0
    fi
    sleep 0.2
  done
  echo "cluster did not become healthy; see $dir/*.log" >&2
  exit 1
  ;;
down)
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  echo "cluster stopped (data kept in $dir/; rm -rf $dir to start afresh)"
  ;;
*)
  echo "usage: $0 up|down" >&2
  exit 2
  ;;
esac
