#!/usr/bin/env bash
# Build (or find) the official Kubernetes control plane for the real-cluster test tier.
#
#   .ci/k8s/build.sh [K8S_VERSION ...]     default: $VIDEOJOBS_K8S_VERSIONS or v1.37.2
#
# For each version it builds kube-apiserver, kube-controller-manager and kube-scheduler from the
# k8s.io/kubernetes Go module, and once (shared by all versions) etcd (go.etcd.io/etcd/server/v3)
# and helm (helm.sh/helm/v4/cmd/helm). Everything lives outside the checkout:
#
#   ${VIDEOJOBS_K8S_CACHE:-~/.cache/videojobs/k8s}/<version>/bin/{kube-apiserver,...,etcd,helm}
#   ${VIDEOJOBS_K8S_CACHE}/tools/{etcd-<v>,helm-<v>}/bin/...  (shared; symlinked into each version)
#
# Sources come from the Go module proxy only. k8s.io/kubernetes requires its staging modules as
# v0.0.0 with `replace => ./staging/...`; the throwaway module written here replaces each of them
# with the matching published v0.N.M (read from that version's own go.mod).
# Idempotent: a binary that is already there is not rebuilt. KUBEBUILDER_ASSETS (the envtest
# convention), when it names a folder holding the binaries, is used as is and nothing is built.
# Prints the bin folder of the last version on stdout (everything else goes to stderr).
set -euo pipefail

ETCD_VERSION=${VIDEOJOBS_ETCD_VERSION:-v3.6.17}
HELM_VERSION=${VIDEOJOBS_HELM_VERSION:-v4.3.2}
CACHE=${VIDEOJOBS_K8S_CACHE:-$HOME/.cache/videojobs/k8s}
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler)
export PATH="/usr/local/go/bin:$PATH"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

log() { printf '[k8s-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

have_all() { # dir bin...
    local dir=$1; shift
    local b
    for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && have_all "$KUBEBUILDER_ASSETS" etcd "${K8S_BINS[@]}"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS (nothing built)"
    echo "$KUBEBUILDER_ASSETS"
    exit 0
fi

if ! command -v go >/dev/null; then
    log "no Go toolchain: cannot build the control plane (install Go or set KUBEBUILDER_ASSETS)"
    exit 3
fi

# build_module DIR MODULE VERSION OUTDIR PKG... — a throwaway module requiring MODULE@VERSION
# (with replace lines from $DIR/replace.txt if present) and `go build` of PKG into OUTDIR;
# $LDFLAGS_X adds -X settings to the linker flags.
build_module() {
    local dir=$1 module=$2 version=$3 out=$4; shift 4
    mkdir -p "$dir" "$out"
    local gover
    gover=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')
    {
        echo "module videojobs.local/buildcontrolplane"
        echo
        echo "go ${GO_DIRECTIVE:-$gover}"
        [[ -n "${GODEBUG_LINE:-}" ]] && echo "$GODEBUG_LINE"
        echo
        echo "require $module $version"
        [[ -f "$dir/replace.txt" ]] && { echo; echo "replace ("; cat "$dir/replace.txt"; echo ")"; }
    } > "$dir/go.mod"
    {
        echo "//go:build tools"
        echo
        echo "package tools"
        echo
        echo "import ("
        local p
        for p in "$@"; do echo "	_ \"$p\""; done
        echo ")"
    } > "$dir/tools.go"
    log "resolving $module@$version in $dir"
    (cd "$dir" && go mod tidy >&2)
    log "building $* -> $out"
    local t0=$SECONDS
    (cd "$dir" && nice -n 19 go build -trimpath -ldflags="-s -w ${LDFLAGS_X:-}" -o "$out/" "$@" >&2)
    log "built $module@$version in $((SECONDS - t0)) s"
}

build_etcd() {
    local tdir="$CACHE/tools/etcd-$ETCD_VERSION"
    if have_all "$tdir/bin" etcd; then return; fi
    GO_DIRECTIVE="" GODEBUG_LINE="" build_module "$tdir/src" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" \
        "$tdir/bin" go.etcd.io/etcd/server/v3
    # the main package at the module root is named after its path ("server" or "v3")
    local b
    for b in server v3; do
        if [[ -x "$tdir/bin/$b" ]]; then mv "$tdir/bin/$b" "$tdir/bin/etcd"; fi
    done
    have_all "$tdir/bin" etcd
}

build_helm() {
    local tdir="$CACHE/tools/helm-$HELM_VERSION"
    if have_all "$tdir/bin" helm; then return; fi
    GO_DIRECTIVE="" GODEBUG_LINE="" build_module "$tdir/src" helm.sh/helm/v4 "$HELM_VERSION" \
        "$tdir/bin" helm.sh/helm/v4/cmd/helm
}

build_k8s() {
    local version=$1
    local vdir="$CACHE/$version"
    local bin="$vdir/bin"
    # the version the binaries report (/version, `helm install`'s kubeVersion check), set as
    # Kubernetes' own build does (hack/lib/version.sh)
    local minor patch x="" pkg
    minor=$(echo "$version" | cut -d. -f2)
    patch=$(echo "$version" | cut -d. -f3)
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        x+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        x+=" -X $pkg.gitTreeState=clean"
    done
    if have_all "$bin" "${K8S_BINS[@]}" &&
        "$bin/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $version"; then
        log "$version: cached in $bin"
    else
        local src="$vdir/src"
        mkdir -p "$src"
        rm -f "${K8S_BINS[@]/#/$bin/}"
        local modfile
        modfile=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
        [[ -f "$modfile" ]] || { log "cannot download k8s.io/kubernetes@$version"; exit 1; }
        # staging modules: `k8s.io/x => ./staging/src/k8s.io/x` becomes `k8s.io/x => k8s.io/x v0.MINOR.PATCH`;
        # any other replace line is copied as is.
        awk -v v="v0.$minor.$patch" '
            /^replace[[:space:]]*\(/ { inrep = 1; next }
            inrep && /^\)/ { inrep = 0; next }
            inrep && /=>/ {
                if ($3 ~ /^\.\/staging\//) { printf "\t%s => %s %s\n", $1, $1, v }
                else { print }
            }
        ' "$modfile" > "$src/replace.txt"
        log "$version: $(wc -l < "$src/replace.txt") replace directives"
        local gover godebug
        gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$modfile")
        godebug=$(grep -E '^godebug ' "$modfile" || true)
        GO_DIRECTIVE="$gover" GODEBUG_LINE="$godebug" LDFLAGS_X="$x" build_module "$src" k8s.io/kubernetes "$version" "$bin" \
            "${K8S_BINS[@]/#/k8s.io/kubernetes/cmd/}"
    fi
    ln -sfn "$CACHE/tools/etcd-$ETCD_VERSION/bin/etcd" "$bin/etcd"
    ln -sfn "$CACHE/tools/helm-$HELM_VERSION/bin/helm" "$bin/helm"
    have_all "$bin" "${K8S_BINS[@]}" etcd helm
}

if [[ $# -eq 0 ]]; then
    read -r -a versions <<< "${VIDEOJOBS_K8S_VERSIONS:-v1.37.2}"
else
    versions=("$@")
fi
mkdir -p "$CACHE"
# one build at a time per cache (two CI runs or helpers must not build into the same folder at once)
exec 9> "$CACHE/.lock"
flock 9
t_start=$SECONDS
build_etcd
build_helm
last=""
for v in "${versions[@]}"; do
    build_k8s "$v"
    last="$CACHE/$v/bin"
done
log "done in $((SECONDS - t_start)) s: ${versions[*]}"
echo "$last"
