#!/usr/bin/env bash
# Builds a FROM scratch Prometheus image from Debian's prometheus package, for
# machines that cannot pull the official image. The package's binary needs
# only the C library and its loader, which are copied from this machine
# (a Debian of the same release).
#
#   docker/prometheus-image.sh TAG     e.g. clusterkit/prometheus:2.42-debian
#
# The image runs like the official one: /bin/prometheus, the config at
# /etc/prometheus/prometheus.yml, the data in /prometheus.
set -euo pipefail
tag=${1:?usage: $0 TAG}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

if ! apt-get download prometheus >/dev/null 2>apt.err; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get download prometheus >/dev/null 2>apt.err || { cat apt.err >&2; echo "apt-get download prometheus failed" >&2; exit 1; }
fi
dpkg-deb -x prometheus_*.deb pkg

mkdir -p root/bin root/etc/prometheus root/prometheus root/tmp
cp pkg/usr/bin/prometheus pkg/usr/bin/promtool root/bin/
# The binary's shared libraries (libc and the loader), at the same paths.
for lib in $(ldd pkg/usr/bin/prometheus | grep -oE '/[^ ]+\.so[^ ]*'); do
  mkdir -p "root$(dirname "$lib")"
  cp -L "$lib" "root$lib"
done
if [ -d pkg/usr/share/prometheus/web ]; then
  mkdir -p root/usr/share/prometheus
  cp -r pkg/usr/share/prometheus/web root/usr/share/prometheus/
fi
cat > root/etc/prometheus/prometheus.yml <<'YAML'
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
YAML
printf 'hosts: files dns\n' > root/etc/nsswitch.conf

cat > Dockerfile <<'DOCKERFILE'
FROM scratch
COPY root/ /
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
DOCKERFILE
version=$(dpkg-deb -f prometheus_*.deb Version)
if ! out=$(docker build -q --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="Prometheus from Debian's package $version" \
  -t "$tag" . 2>&1); then
  echo "$out" >&2
  exit 1
fi
echo "built $tag from Debian's prometheus $version"
