# One of the platform's images from a static binary built on the host, with
# nothing pulled: `make images` runs
#
#   docker build -f docker/prebuilt.Dockerfile --build-arg SERVICE=kv-sync -t clusterkit/kv-sync:dev bin/
#
# It holds the same file at the same path as the image the root Dockerfile
# builds from source, so compose.yaml runs either.
FROM scratch
ARG SERVICE
COPY ${SERVICE} /${SERVICE}
COPY ckctl /ckctl
ENV HTTP_ADDR=0.0.0.0:8080 \
    RAFT_ADDR=0.0.0.0:9080 \
    DATA_DIR=/data
EXPOSE 8080 9080
