#!/usr/bin/env bash
# Build the Kubernetes control plane the Kubernetes runtime is tested
# against, from pinned module versions: kube-apiserver,
# kube-controller-manager and kube-scheduler (k8s.io/kubernetes), etcd
# (go.etcd.io/etcd), kwok (sigs.k8s.io/kwok), which plays the kubelet so
# that pods report Running, and helm (helm.sh/helm/v3), to lint, render and
# apply the chart. The binaries go to a cache outside the checkout, keyed by the
# versions, so a new clone reuses them; a first build takes about 15
# minutes on 2 cores. Prints the directory holding them on stdout, its only
# output there.
set -euo pipefail

KUBERNETES_VERSION=v1.34.2
STAGING_VERSION=v0.34.2
ETCD_VERSION=v3.6.5
KWOK_VERSION=v0.7.0
HELM_VERSION=v3.19.0

cache="${CHAINDOCK_CACHE:-$HOME/.cache/chaindock}"
# The last number changes with how the binaries are built.
dir="$cache/kube/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-2"
helm_dir="$cache/helm/$HELM_VERSION"
want=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

have_all() {
  for b in "${want[@]}"; do
    [ -x "$dir/$b" ] || return 1
  done
  [ -x "$dir/helm" ]
}

if have_all; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod
nice_go() { nice -n 10 go "$@"; }

if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/kube-controller-manager" ] || [ ! -x "$dir/kube-scheduler" ]; then
  echo "kube-test-bins: building kube-apiserver, kube-controller-manager and kube-scheduler $KUBERNETES_VERSION (takes minutes)" >&2
  mkdir -p "$work/kube"
  cd "$work/kube"
  # k8s.io/kubernetes points its staging modules at v0.0.0 and replaces
  # them with its own tree; a module that requires it replaces them with
  # their published versions.
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  {
    echo "module chaindock.local/kubebins"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    grep -E '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
      awk -v v="$STAGING_VERSION" '{ print "replace " $1 " => " $1 " " v }'
  } > go.mod
  cat > tools.go <<'EOF'
//go:build tools

package kubebins

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
EOF
  nice_go mod tidy >&2 2>&1 || nice_go mod tidy -e >&2
  # The version the binaries report, as a release build stamps it.
  minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  ldflags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
    [ -x "$dir/$cmd" ] || nice_go build -ldflags "$ldflags" -o "$dir/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
  done
fi

if [ ! -x "$dir/etcd" ]; then
  echo "kube-test-bins: building etcd $ETCD_VERSION" >&2
  mkdir -p "$work/etcd"
  cd "$work/etcd"
  cat > go.mod <<EOF
module chaindock.local/etcdbin

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  cat > main.go <<'EOF'
// Command etcd is etcd's server, as its own binary runs it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  nice_go mod tidy >&2
  nice_go build -o "$dir/etcd" . >&2
fi

if [ ! -x "$dir/kwok" ]; then
  echo "kube-test-bins: installing kwok $KWOK_VERSION" >&2
  GOBIN="$dir" nice_go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
fi

if [ ! -x "$dir/helm" ]; then
  if [ ! -x "$helm_dir/helm" ]; then
    echo "kube-test-bins: installing helm $HELM_VERSION" >&2
    mkdir -p "$helm_dir"
    GOBIN="$helm_dir" nice_go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  fi
  ln -sf "$helm_dir/helm" "$dir/helm"
fi

have_all
echo "$dir"
