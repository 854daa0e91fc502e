# Builds any of the platform's images from source, for machines that can pull
# the official Go image: this is what a plain `docker compose up` uses.
#
#   docker build --build-arg SERVICE=kv-sync -t clusterkit/kv-sync:dev .
#
# SERVICE is kv-sync, kv-async, kv-server-side or loadtest. `make images`
# makes the same images without pulling anything: it builds the static
# binaries on the host and copies each into a FROM scratch image (see
# docker/prebuilt.Dockerfile).
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
ARG SERVICE
WORKDIR /src
COPY . .
RUN case "$SERVICE" in \
      kv-sync|kv-async|kv-server-side) dir=services/$SERVICE ;; \
      loadtest) dir=loadtest ;; \
      *) echo "SERVICE must be kv-sync, kv-async, kv-server-side or loadtest, not '$SERVICE'" >&2; exit 1 ;; \
    esac && \
    cd "$dir" && CGO_ENABLED=0 GOWORK=off go build -trimpath -o "/out/$SERVICE" . && \
    cd /src/clusterkit && CGO_ENABLED=0 GOWORK=off go build -trimpath -o /out/ckctl ./cmd/ckctl

FROM scratch
ARG SERVICE
COPY --from=build /out/${SERVICE} /${SERVICE}
COPY --from=build /out/ckctl /ckctl
ENV HTTP_ADDR=0.0.0.0:8080 \
    RAFT_ADDR=0.0.0.0:9080 \
    DATA_DIR=/data
EXPOSE 8080 9080
