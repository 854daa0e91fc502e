#!/usr/bin/env bash
# The compose stack's commands, run by the Makefile (make images, up, down,
# loadtest). Settings come from .env and the environment:
#
#   DOCKER_COMPOSE   the compose command: "docker compose" (v2) or docker-compose (1.29)
#   STRATEGIES       clusters to start: any of sync async server-side (default: all three)
#   SECURE           1: the secured variant (compose.secure.yaml on top of
#                    compose.yaml), for the clusters it secures (sync)
#   CERTS_DIR        the secured variant's certificates and token file
#                    (cluster-token); default ./certs
#
#   stack.sh images               static binaries, then the FROM scratch images
#   stack.sh prometheus-image     print the Prometheus image to run, building one
#                                 from Debian's package when the official one is absent
#   stack.sh up                   start the stack, wait until every node is healthy, say where it is
#                                 (SECURE=1: certificates and a token made first if missing)
#   stack.sh wait                 wait until every node of the running clusters is healthy
#   stack.sh status               where everything is
#   stack.sh running              print the strategies whose clusters are running
#   stack.sh loadtest [FLAGS]     run the load generator in the stack's network
#   stack.sh down                 remove containers, network and volumes
set -euo pipefail
cd "$(dirname "$0")/.."

# Settings from .env, unless the environment has them.
while IFS='=' read -r key value; do
  [[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
  [ -n "${!key+x}" ] || export "$key=$value"
done < .env

if [ -z "${DOCKER_COMPOSE:-}" ]; then
  if docker compose version >/dev/null 2>&1; then DOCKER_COMPOSE="docker compose"; else DOCKER_COMPOSE=docker-compose; fi
fi
read -r -a compose <<<"$DOCKER_COMPOSE"

ALL_STRATEGIES="sync async server-side"
STRATEGIES=${STRATEGIES:-$ALL_STRATEGIES}
# The clusters compose.secure.yaml secures.
SECURE_STRATEGIES="sync"
CERTS_DIR=${CERTS_DIR:-./certs}
export CERTS_DIR
TOKEN_FILE=$CERTS_DIR/cluster-token
if [ "${SECURE:-}" = 1 ]; then
  compose+=(-f compose.yaml -f compose.secure.yaml)
fi
LOCAL_PROMETHEUS_IMAGE=clusterkit/prometheus:2.42-debian
NODES=10

say() { printf '%s\n' "$*" >&2; }

service() { echo "kv-$1"; } # strategy -> service name prefix

port_prefix() {
  case $1 in
  sync) echo "$KV_SYNC_PORT_PREFIX" ;;
  async) echo "$KV_ASYNC_PORT_PREFIX" ;;
  server-side) echo "$KV_SERVER_SIDE_PORT_PREFIX" ;;
  esac
}

check_strategies() {
  for s in $STRATEGIES; do
    case " $ALL_STRATEGIES " in *" $s "*) ;; *) say "STRATEGIES: unknown strategy '$s' (want any of: $ALL_STRATEGIES)"; exit 2 ;; esac
    if [ "${SECURE:-}" = 1 ]; then
      case " $SECURE_STRATEGIES " in *" $s "*) ;; *) say "STRATEGIES: the secured variant secures $SECURE_STRATEGIES only, not '$s'"; exit 2 ;; esac
    fi
  done
}

# secrets makes what the secured variant mounts, where it is missing: the
# development CA and the nodes' certificates (make certs) and a random
# token, readable by its owner only.
secrets() {
  local s i missing=""
  for s in $STRATEGIES; do
    for i in $(seq 1 $NODES); do
      [ -f "$CERTS_DIR/$(service "$s")-$i-key.pem" ] || missing=1
    done
  done
  if [ -n "$missing" ] || [ ! -f "$CERTS_DIR/ca.pem" ]; then
    make -s certs
  fi
  if [ ! -s "$TOKEN_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN_FILE")
    say "new cluster token in $TOKEN_FILE"
  fi
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

images() {
  make -s bins
  for s in kv-sync kv-async kv-server-side loadtest; do
    if ! out=$(docker build -q -f docker/prebuilt.Dockerfile --build-arg SERVICE="$s" -t "clusterkit/$s:$CLUSTERKIT_TAG" bin/ 2>&1); then
      say "$out"
      return 1
    fi
    say "image clusterkit/$s:$CLUSTERKIT_TAG"
  done
}

# prometheus_image prints the image to run: the official one when this
# machine has it, else one built from Debian's package (nothing is pulled).
prometheus_image() {
  if have_image "$PROMETHEUS_IMAGE"; then
    echo "$PROMETHEUS_IMAGE"
    return
  fi
  if ! have_image "$LOCAL_PROMETHEUS_IMAGE"; then
    say "$PROMETHEUS_IMAGE is not on this machine: building $LOCAL_PROMETHEUS_IMAGE from Debian's prometheus package"
    docker/prometheus-image.sh "$LOCAL_PROMETHEUS_IMAGE" >&2
  fi
  echo "$LOCAL_PROMETHEUS_IMAGE"
}

# profiles prints COMPOSE_PROFILES for the chosen strategies, with Grafana
# when its image is here.
profiles() {
  local p
  p=$(echo "$STRATEGIES" | tr ' ' ',')
  if have_image "$GRAFANA_IMAGE"; then p="$p,grafana"; fi
  echo "$p"
}

# every profile, so that down and ps see every service
all_profiles() { echo "sync,async,server-side,grafana,loadtest"; }

up() {
  check_strategies
  [ "${SECURE:-}" != 1 ] || secrets
  images
  PROMETHEUS_IMAGE=$(prometheus_image)
  export PROMETHEUS_IMAGE
  COMPOSE_PROFILES=$(profiles)
  export COMPOSE_PROFILES
  if ! have_image "$GRAFANA_IMAGE"; then
    say "Grafana not started: its image $GRAFANA_IMAGE is not on this machine and none is pulled by make up (docker pull $GRAFANA_IMAGE, then make up)."
  fi
  "${compose[@]}" up -d --no-build
  wait_healthy
  status
}

# states prints "service state" for every container of the project, in one
# call (a compose command per container is slow with docker-compose 1.29).
# state is healthy, unhealthy, starting, or the container's status.
states() {
  docker ps -a --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --format '{{.Label "com.docker.compose.service"}} {{.State}} {{.Status}}' |
    while read -r svc state status; do
      case $status in
      *"(healthy)"*) echo "$svc healthy" ;;
      *"(unhealthy)"*) echo "$svc unhealthy" ;;
      *"(health: starting)"*) echo "$svc starting" ;;
      *) echo "$svc $state" ;;
      esac
    done
}

# running prints the strategies with at least one running node.
running() {
  local s out=() st
  st=$(states)
  for s in $ALL_STRATEGIES; do
    if grep -qE "^$(service "$s")-[0-9]+ (healthy|unhealthy|starting|running)$" <<<"$st"; then
      out+=("$s")
    fi
  done
  echo "${out[*]}"
}

# health prints a service's state from the output of states, or "missing".
health() {
  local st
  st=$(sed -n "s/^$1 //p" <<<"$2")
  echo "${st:-missing}"
}

wait_healthy() {
  local deadline=$((SECONDS + ${WAIT_SECONDS:-180})) s i st bad all
  local strategies
  strategies=$(running)
  [ -n "$strategies" ] || { say "no cluster is running"; return 1; }
  say "waiting until every node of: $strategies is healthy"
  while :; do
    bad=""
    all=$(states)
    for s in $strategies; do
      for i in $(seq 1 $NODES); do
        st=$(health "$(service "$s")-$i" "$all")
        [ "$st" = healthy ] || bad="$bad $(service "$s")-$i($st)"
      done
    done
    [ -z "$bad" ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      say "not healthy after ${WAIT_SECONDS:-180}s:$bad"
      say "see: ${DOCKER_COMPOSE} logs <service>"
      return 1
    fi
    sleep 2
  done
}

# leader asks a node for its cluster's leader: over HTTP, or over HTTPS with
# the CA and the token of the secured variant.
leader() {
  {
    curl -fsS --max-time 2 "http://127.0.0.1:$1/consensus/leader" 2>/dev/null ||
      { [ -f "$CERTS_DIR/ca.pem" ] && [ -f "$TOKEN_FILE" ] &&
        curl -fsS --max-time 2 --cacert "$CERTS_DIR/ca.pem" -H "Authorization: Bearer $(head -n1 "$TOKEN_FILE")" \
          "https://127.0.0.1:$1/consensus/leader" 2>/dev/null; }
  } | sed -n 's/.*"leader_id":"\([^"]*\)".*/\1/p'
}

# scheme is https for a cluster of the running secured variant, else http.
scheme() {
  if [ "$(docker ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$(service "$1")-1" --filter volume=/tls/ca.pem 2>/dev/null)" ]; then
    echo https
  else
    echo http
  fi
}

status() {
  local s prefix healthy i l all
  all=$(states)
  printf '\n%-16s %-9s %-38s %s\n' "cluster" "healthy" "a node's map" "leader" >&2
  for s in $(running); do
    prefix=$(port_prefix "$s")
    healthy=0
    for i in $(seq 1 $NODES); do [ "$(health "$(service "$s")-$i" "$all")" = healthy ] && healthy=$((healthy + 1)); done
    l=$(leader "${prefix}01")
    printf '%-16s %-9s %-38s %s\n' "$(service "$s")" "$healthy/$NODES" "$(scheme "$s")://127.0.0.1:${prefix}01/cluster" "${l:-none}" >&2
  done
  say ""
  say "nodes:      127.0.0.1 ports ${KV_SYNC_PORT_PREFIX}01-${KV_SYNC_PORT_PREFIX}10 (kv-sync-1..10), ${KV_ASYNC_PORT_PREFIX}01-${KV_ASYNC_PORT_PREFIX}10 (kv-async), ${KV_SERVER_SIDE_PORT_PREFIX}01-${KV_SERVER_SIDE_PORT_PREFIX}10 (kv-server-side)"
  for s in $(running); do
    if [ "$(scheme "$s")" = https ]; then
      say "secured:    $(service "$s") speaks HTTPS and wants the token: curl --cacert $CERTS_DIR/ca.pem -H \"Authorization: Bearer \$(cat $TOKEN_FILE)\" https://127.0.0.1:$(port_prefix "$s")01/cluster"
    fi
  done
  say "Prometheus: http://127.0.0.1:$PROMETHEUS_PORT"
  if [ "$(health grafana "$all")" = running ]; then
    say "Grafana:    http://127.0.0.1:$GRAFANA_PORT (dashboards: ClusterKit / Cluster, Strategies)"
  elif ! have_image "$GRAFANA_IMAGE"; then
    say "Grafana:    not running: its image $GRAFANA_IMAGE is not on this machine (docker pull it, then make up)"
  else
    say "Grafana:    not running"
  fi
}

loadtest() {
  local strategies s i addrs args=()
  strategies=$(running)
  [ -n "$strategies" ] || { say "no cluster is running"; return 1; }
  wait_healthy
  images
  for s in $strategies; do
    addrs=""
    for i in $(seq 1 $NODES); do addrs="$addrs${addrs:+,}$(service "$s")-$i:8080"; done
    args+=(-cluster "$s=$addrs")
  done
  export COMPOSE_PROFILES=$(all_profiles)
  say "mode: the running stack ($strategies), from a container in its network"
  local rc=0
  # The repository is the working directory, so that a relative -json FILE
  # lands in it on the host.
  "${compose[@]}" run --rm -v "$PWD:/work" -w /work loadtest -echo echo:8080 "${args[@]}" "$@" || rc=$?
  "${compose[@]}" rm -sf echo >/dev/null 2>&1 || true
  return $rc
}

down() {
  COMPOSE_PROFILES=$(all_profiles) "${compose[@]}" down -v --remove-orphans
}

cmd=${1:-}
shift || true
case $cmd in
images) images ;;
prometheus-image) prometheus_image ;;
up) up ;;
wait) wait_healthy ;;
status) status ;;
running) running ;;
loadtest) loadtest "$@" ;;
down) down ;;
*)
  sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
