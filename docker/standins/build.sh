#!/usr/bin/env bash
# Builds stand-ins for the three images docker-compose.yml pulls (python:3.11-slim,
# postgres:16-alpine, hashicorp/consul:1.19), for a machine where no image registry answers
# but Debian's package mirror and PyPI do. See README.md beside this script.
#
#   docker/standins/build.sh                 debootstrap a Debian root fs, then build all three
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

# Each image is built from a copy of its folder plus the host's CA bundle.
build() {
    local tag=$1 dir=$2
    local context=$work/context-${dir}
    cp -r "$here/$dir" "$context"
    cp "$ca_bundle" "$context/ca-certificates.crt"
    echo "standins: building $tag"
    docker build --build-arg "BASE=$base" -t "$tag" "$context"
}

build python:3.11-slim python
build postgres:16-alpine postgres

# devconsul comes from this repository, as a wheel (it needs only the standard library).
mkdir -p "$work/context-consul-wheel"
python3 -m pip wheel --quiet --no-deps -w "$work/context-consul-wheel" "$repo"
cp -r "$here/consul" "$work/context-consul"
mv "$work/context-consul-wheel"/*.whl "$work/context-consul/"
cp "$ca_bundle" "$work/context-consul/ca-certificates.crt"
echo "standins: building hashicorp/consul:1.19"
docker build --build-arg "BASE=$base" -t hashicorp/consul:1.19 "$work/context-consul"

docker image ls --filter reference='python:3.11-slim' --filter reference='postgres:16-alpine' \
    --filter reference='hashicorp/consul:1.19' --filter reference="$base"
