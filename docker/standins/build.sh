#!/usr/bin/env bash
# Builds stand-ins for the four images docker-compose.yml pulls (python:3.11-slim,
# postgres:16-alpine, hashicorp/consul:1.19, jaegertracing/all-in-one:1.76.0), for a machine
# where no image registry answers but Debian's package mirror and PyPI do. See README.md
# beside this script.
#
#   docker/standins/build.sh                 debootstrap a Debian root fs, then build all four
#   ROOTFS=/var/tmp/rootfs-py docker/standins/build.sh
#                                            reuse a finished root fs (bookworm minbase with
#                                            python3, python3-pip, python3-venv, ca-certificates)
#
# Needs root, a running Docker engine, and debootstrap when ROOTFS is not given.
# CA_BUNDLE (default: this host's /etc/ssl/certs/ca-certificates.crt) is copied into the images,
# so pip inside a container trusts what the host trusts.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
base=switchyard-standin/debian-python:$suite

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rootfs=${ROOTFS:-}
if [[ -z $rootfs ]]; then
    rootfs=$work/rootfs
    echo "standins: debootstrap $suite into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
        "$suite" "$rootfs" "$mirror"
fi

echo "standins: importing $rootfs as $base"
tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base"

# The consul and jaeger stand-ins run code of this repository (devconsul; switchyard's OTLP
# receiver and span store), installed from a wheel of it built here.
mkdir -p "$work/wheel"
python3 -m pip wheel --quiet --no-deps -w "$work/wheel" "$repo"

# Each image is built from a copy of its folder plus the host's CA bundle (and the wheel).
build() {
    local tag=$1 dir=$2 with_wheel=${3:-}
    local context=$work/context-$dir
    cp -r "$here/$dir" "$context"
    cp "$ca_bundle" "$context/ca-certificates.crt"
    if [[ -n $with_wheel ]]; then
        cp "$work/wheel"/*.whl "$context/"
    fi
    echo "standins: building $tag"
    docker build --build-arg "BASE=$base" -t "$tag" "$context"
}

build python:3.11-slim python
build postgres:16-alpine postgres
build hashicorp/consul:1.19 consul with-wheel
build jaegertracing/all-in-one:1.76.0 jaeger with-wheel

docker image ls --filter reference='python:3.11-slim' --filter reference='postgres:16-alpine' \
    --filter reference='hashicorp/consul:1.19' \
    --filter reference='jaegertracing/all-in-one:1.76.0' --filter reference="$base"
