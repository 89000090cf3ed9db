#!/usr/bin/env bash
# Build labmesh's image (Dockerfile) where no container registry is reachable, only Debian's mirror and PyPI.
#
# The Dockerfile's base, python:3.11.14-slim-bookworm, comes from a registry. Without one, this script makes a
# stand-in base with debootstrap: Debian bookworm (minbase) with its python3 (3.11.2), python3-venv,
# python-is-python3 and ca-certificates, imported into the local Docker as STAND_IN_IMAGE. Then it builds the
# Dockerfile on it with `--build-arg PYTHON_IMAGE=...`; the build pip-installs labmesh's dependencies from PyPI.
# The stand-in differs from the real base: its python is Debian's, in /usr/bin, not /usr/local/bin.
#
# Needs: root (debootstrap), a running dockerd, debootstrap (`apt-get install docker.io debootstrap`).
# Where no dockerd runs and it cannot use its usual network setup (a sandbox, a container), start one first:
#   dockerd --iptables=false --ip6tables=false --bridge=none &>/tmp/dockerd.log &
# (add --storage-driver=vfs if overlay2 fails). The build and the containers then use `--network host`.
#
# Idempotent: an existing stand-in image is reused (REBUILD_STAND_IN=1 makes it again), and the build reuses
# Docker's layer cache: the dependencies are installed again only when pyproject.toml changes, so a change to
# labmesh's code rebuilds without downloading them again.
#
#   sudo scripts/build-image-offline.sh                 # builds labmesh:local
#   IMAGE_TAG=labmesh:dev scripts/build-image-offline.sh
set -euo pipefail

STAND_IN_IMAGE="${STAND_IN_IMAGE:-labmesh-stand-in-python:3.11-bookworm}"
IMAGE_TAG="${IMAGE_TAG:-labmesh:local}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REBUILD_STAND_IN="${REBUILD_STAND_IN:-0}"
# The stand-in's root file system while it is made (global, so the EXIT trap still sees it).
rootfs=""
# The Dockerfile and its build context: the repository root, one folder above this script.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
    echo "build-image-offline: $*" >&2
    exit 1
}

command -v docker >/dev/null || die "no docker client (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "dockerd is not running or not reachable; see the comment at the top of $0"

make_stand_in() {
    [[ ${EUID} -eq 0 ]] || die "making the stand-in base needs root (debootstrap, chroot)"
    command -v debootstrap >/dev/null || die "no debootstrap (apt-get install debootstrap)"
    rootfs="$(mktemp -d /tmp/labmesh-rootfs.XXXXXX)"
    # The root file system is only needed until it is imported.
    trap 'rm -rf "${rootfs}"' EXIT
    echo "build-image-offline: debootstrap bookworm into ${rootfs} from ${DEBIAN_MIRROR}"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
        bookworm "${rootfs}" "${DEBIAN_MIRROR}" >"${rootfs}.log" 2>&1 ||
        die "debootstrap failed; its log: ${rootfs}.log"
    rm -f "${rootfs}.log"
    # Certificate authorities this host added itself (a TLS-inspecting proxy's, a company's) go into the base
    # too, or pip inside the build cannot verify PyPI through that proxy. Without any, nothing changes.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "${rootfs}/usr/local/share/ca-certificates/"
        chroot "${rootfs}" update-ca-certificates >/dev/null
    fi
    # Like the official slim images: no package lists or downloaded .debs in the image.
    rm -rf "${rootfs}"/var/cache/apt/*.bin "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
    mkdir -p "${rootfs}/var/lib/apt/lists/partial"
    tar --numeric-owner -C "${rootfs}" -c . |
        docker import \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["python3"]' \
            - "${STAND_IN_IMAGE}" >/dev/null
    rm -rf "${rootfs}"
    trap - EXIT
}

if [[ ${REBUILD_STAND_IN} != 1 ]] && docker image inspect "${STAND_IN_IMAGE}" >/dev/null 2>&1; then
    echo "build-image-offline: reusing the stand-in base ${STAND_IN_IMAGE}"
else
    make_stand_in
    echo "build-image-offline: made the stand-in base ${STAND_IN_IMAGE}"
fi

# The legacy builder, which every docker client still has: from 23.0 on a client builds with BuildKit only
# through the buildx plugin, and bookworm packages no buildx (a newer static client without it, first on PATH,
# fails with DOCKER_BUILDKIT=1). The Dockerfile needs nothing from BuildKit and has no `# syntax` line, so
# Debian's own 20.10 client can build it with BuildKit too (DOCKER_BUILDKIT=1 /usr/bin/docker build ...), but
# in a cache of its own. --network host because a sandboxed dockerd may run without a bridge.
echo "build-image-offline: building ${IMAGE_TAG} from ${REPO_ROOT}/Dockerfile"
DOCKER_BUILDKIT=0 docker build --network host \
    --build-arg "PYTHON_IMAGE=${STAND_IN_IMAGE}" \
    -t "${IMAGE_TAG}" "${REPO_ROOT}"

docker image ls "${IMAGE_TAG}"
cat <<EOF
build-image-offline: built ${IMAGE_TAG} on ${STAND_IN_IMAGE}. Try it:
  docker run --rm ${IMAGE_TAG} id
  docker run -d --network host ${IMAGE_TAG}     # the code location on :4000
  docker run --rm --network host ${IMAGE_TAG} dagster api grpc-health-check -p 4000
  docker run -d --network host ${IMAGE_TAG} labmesh api --host 0.0.0.0 --port 8000   # then /healthz
EOF
