#!/usr/bin/env bash
# Builds the convsync container image from this checkout without pulling
# anything: a static binary built here, the host's CA bundle and
# deploy/container/passwd, copied by deploy/container/Dockerfile into an
# image FROM scratch (the layout of the build context is described there).
#
#   scripts/build-image.sh [TAG] [VERSION]     (default convsync:dev, dev)
#
# Uses podman, or docker when podman is missing (CONTAINER_ENGINE overrides).
# Extra flags for the engine go in CONTAINER_BUILD_FLAGS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tag="${1:-convsync:dev}"
version="${2:-dev}"
engine="${CONTAINER_ENGINE:-$(command -v podman || command -v docker || true)}"
if [[ -z "${engine}" ]]; then
	echo "build-image: neither podman nor docker is installed" >&2
	exit 1
fi
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
if [[ ! -s "${ca_bundle}" ]]; then
	echo "build-image: no CA bundle at ${ca_bundle} (install ca-certificates, or set CA_BUNDLE)" >&2
	exit 1
fi

context="$(mktemp -d)"
trap 'rm -rf "${context}"' EXIT
root="${context}/rootfs"
install -d -m 0755 "${root}/usr/local/bin" "${root}/etc/ssl/certs"
# Static: no libc in the image (as release tools like GoReleaser build).
CGO_ENABLED=0 GOOS=linux go build -trimpath \
	-ldflags "-s -w -X github.com/convsync/convsync/internal/cli.Version=${version}" \
	-o "${root}/usr/local/bin/convsync" ./cmd/convsync
install -m 0644 "${ca_bundle}" "${root}/etc/ssl/certs/ca-certificates.crt"
install -m 0644 deploy/container/passwd deploy/container/group "${root}/etc/"
install -d -m 1777 "${root}/tmp"
install -d -m 0700 "${context}/statefs/state"
# shellcheck disable=SC2086 # flags are words
"${engine}" build ${CONTAINER_BUILD_FLAGS:-} -f deploy/container/Dockerfile -t "${tag}" "${context}"
