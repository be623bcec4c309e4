#!/usr/bin/env bash
# End-to-end test of videojobs on a throwaway kind cluster:
#
#   1. builds the operator, worker and gateway images (operator/, job_image/, gateway/Dockerfile)
#   2. creates a kind cluster (.ci/e2e/kind-config.yaml) and loads both images into it
#   3. installs the Helm chart (charts/videojobs, values .ci/e2e/values-kind.yaml: namespaced RBAC,
#      clips PVC, in-cluster media allowed by CIDR) and waits for the operator
#   4. serves a generated 20 s test video from inside the cluster (worker image's ffmpeg + Python
#      http.server) and starts MinIO with a bucket: no internet is needed once images are pulled
#   5. applies two VideoProcessingJobs (explicit segments -> PVC; transcript ConfigMap +
#      knowledge points -> S3) and waits with `kubectl wait --for=condition=Complete`
#   6. checks status (phase, conditions, segments, manifest), events, the clips on the PVC
#      (ffprobe durations) and in MinIO, and the operator's /metrics
#   7. the gateway (chart gateway.enabled, auth mode client): as a ServiceAccount with a Role on
#      VideoProcessingJobs, through kubectl port-forward, .ci/e2e/gateway_check.py lists the
#      applied jobs, submits one (idempotent), waits, downloads its clips from MinIO by presigned
#      URL (sha256, Range), checks 401/403/422/traversal and deletes it
#   8. dumps diagnostics on failure and deletes the cluster
#
# Needs: docker, kind, kubectl, helm, python3. Usage: .ci/e2e/kind-e2e.sh
# The job namespace is labelled pod-security.kubernetes.io/enforce=restricted: every pod in it
# (the operator's workers, MinIO, the media server, the checks) must pass the restricted profile.
#
# Environment: KIND_CLUSTER (default videojobs-e2e), KIND_NODE_IMAGE (kind's default),
# E2E_RBAC_SCOPE (namespaced or cluster, default namespaced), E2E_REPLICAS (operator replicas,
# default 1; with more, exactly one must hold the leader Lease),
# KEEP_CLUSTER=1 (leave the cluster for debugging), E2E_TIMEOUT (default 600s),
# E2E_ARTIFACTS (diagnostics directory, default .ci/e2e/artifacts),
# MINIO_IMAGE (default the pinned tag in manifests/minio.yaml).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CLUSTER="${KIND_CLUSTER:-videojobs-e2e}"
TIMEOUT="${E2E_TIMEOUT:-600s}" # seconds, with an "s"
ARTIFACTS="${E2E_ARTIFACTS:-$HERE/artifacts}"
SYSTEM_NS=videojobs-system
NS=videojobs-e2e
RELEASE=videojobs
OPERATOR_IMAGE=videojobs-operator:e2e
WORKER_IMAGE=videojobs-worker:e2e
GATEWAY_IMAGE=videojobs-gateway:e2e
GATEWAY_PORT=18080 # kubectl port-forward to the gateway Service
MINIO_PORT=19000   # ... and to MinIO: the presigned URLs point here (values-kind.yaml)
MANIFESTS="$HERE/manifests"
RBAC_SCOPE="${E2E_RBAC_SCOPE:-namespaced}"
REPLICAS="${E2E_REPLICAS:-1}"
case "$RBAC_SCOPE" in
  namespaced | cluster) ;;
  *) printf 'E2E_RBAC_SCOPE must be namespaced or cluster, not %s\n' "$RBAC_SCOPE" >&2 && exit 2 ;;
esac
case "$REPLICAS" in
  '' | *[!0-9]*) printf 'E2E_REPLICAS must be a number, not %s\n' "$REPLICAS" >&2 && exit 2 ;;
esac
KUBECONFIG_FILE="$(mktemp -d)/kubeconfig"
export KUBECONFIG="$KUBECONFIG_FILE"

log() { printf '\n=== %s ===\n' "$*" >&2; }
fail() {
  printf 'E2E FAILURE: %s\n' "$*" >&2
  exit 1
}

for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done
mkdir -p "$ARTIFACTS"

diagnostics() {
  log "diagnostics in $ARTIFACTS"
  {
    kubectl get nodes -o wide
    kubectl get all,pvc,vpj,leases -A -o wide
  } >"$ARTIFACTS/overview.txt" 2>&1 || true
  kubectl -n "$NS" get vpj -o yaml >"$ARTIFACTS/vpj.yaml" 2>&1 || true
  kubectl -n "$NS" describe vpj >"$ARTIFACTS/vpj-describe.txt" 2>&1 || true
  kubectl -n "$NS" get jobs -o yaml >"$ARTIFACTS/jobs.yaml" 2>&1 || true
  kubectl -n "$NS" describe pods >"$ARTIFACTS/pods-describe.txt" 2>&1 || true
  kubectl get events -A --sort-by=.lastTimestamp >"$ARTIFACTS/events.txt" 2>&1 || true
  kubectl -n "$SYSTEM_NS" logs deployment/"$RELEASE" --all-containers --tail=-1 \
    >"$ARTIFACTS/operator.log" 2>&1 || true
  kubectl -n "$SYSTEM_NS" logs deployment/"$RELEASE-gateway" --all-containers --tail=-1 \
    >"$ARTIFACTS/gateway.log" 2>&1 || true
  local pod
  for pod in $(kubectl -n "$NS" get pods -o name 2>/dev/null); do
    kubectl -n "$NS" logs "$pod" --all-containers --tail=-1 \
      >"$ARTIFACTS/$(basename "$pod").log" 2>&1 || true
  done
  # The most useful parts straight into the CI log as well.
  tail -n 60 "$ARTIFACTS/operator.log" >&2 || true
  cat "$ARTIFACTS/vpj-describe.txt" >&2 || true
}

port_forwards=()
cleanup() {
  local status=$?
  local pid
  for pid in "${port_forwards[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    diagnostics
  fi
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    log "keeping cluster $CLUSTER (KUBECONFIG=$KUBECONFIG_FILE)"
  else
    log "deleting cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    rm -rf "$(dirname "$KUBECONFIG_FILE")"
  fi
  exit "$status"
}
trap cleanup EXIT

log "building images"
docker build -t "$OPERATOR_IMAGE" -f "$REPO/operator/Dockerfile" "$REPO"
docker build -t "$WORKER_IMAGE" -f "$REPO/job_image/Dockerfile" "$REPO"
docker build -t "$GATEWAY_IMAGE" -f "$REPO/gateway/Dockerfile" "$REPO"

log "creating kind cluster $CLUSTER"
create_args=(--name "$CLUSTER" --config "$HERE/kind-config.yaml" --wait 180s)
if [ -n "${KIND_NODE_IMAGE:-}" ]; then
  create_args+=(--image "$KIND_NODE_IMAGE")
fi
kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
kind create cluster "${create_args[@]}"
kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE"

log "loading images"
minio_image="${MINIO_IMAGE:-$(awk '/image: minio\//{print $2; exit}' "$MANIFESTS/minio.yaml")}"
docker pull -q "$minio_image"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$WORKER_IMAGE" "$GATEWAY_IMAGE" \
  "$minio_image"

log "installing the chart"
# The chart installs the CRD (a template, crds.install); it must be established before jobs are
# applied.
kubectl create namespace "$NS"
# The strictest Pod Security Standard, enforced: a pod that breaks it is refused at admission.
kubectl label namespace "$NS" \
  pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/enforce-version=latest \
  pod-security.kubernetes.io/warn=restricted
# The gateway's own S3 keys (gateway.s3.credentials.existingSecret), in its namespace: it never
# reads a tenant's Secret. Test credentials, MinIO's root user (manifests/minio.yaml).
kubectl create namespace "$SYSTEM_NS"
kubectl -n "$SYSTEM_NS" create secret generic gateway-s3 \
  --from-literal=AWS_ACCESS_KEY_ID=videojobs-e2e \
  --from-literal=AWS_SECRET_ACCESS_KEY=videojobs-e2e-secret
# No --wait: Helm would wait for the clips PVC to bind, and kind's local-path storage class
# binds only when the first pod uses the claim (WaitForFirstConsumer).
helm install "$RELEASE" "$REPO/charts/videojobs" \
  --namespace "$SYSTEM_NS" --create-namespace \
  --values "$HERE/values-kind.yaml" \
  --set "rbac.scope=$RBAC_SCOPE" \
  --set "replicaCount=$REPLICAS" \
  --timeout 5m
kubectl wait --for=condition=Established crd/videoprocessingjobs.videojobs.io --timeout=60s
kubectl -n "$SYSTEM_NS" rollout status deployment/"$RELEASE" --timeout=180s
kubectl -n "$SYSTEM_NS" rollout status deployment/"$RELEASE-gateway" --timeout=180s
# One replica holds the Lease (the others stand by, answering their probes): find the leader.
leader=""
for _ in $(seq 60); do
  leader="$(kubectl -n "$SYSTEM_NS" get lease videojobs-operator \
    -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)"
  [ -n "$leader" ] && break
  sleep 2
done
[ -n "$leader" ] || fail "no operator replica holds the leader Lease"
pods="$(kubectl -n "$SYSTEM_NS" get pods -l app.kubernetes.io/component=operator \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')"
[ "$(grep -c . <<<"$pods")" -eq "$REPLICAS" ] || fail "expected $REPLICAS operator pods: $pods"
grep -qx "$leader" <<<"$pods" || fail "the Lease holder $leader is not an operator pod"
echo "leader: $leader of $REPLICAS replica(s), RBAC scope $RBAC_SCOPE"

log "starting the media server and MinIO"
kubectl apply -f "$MANIFESTS/media-server.yaml"
sed "s#image: minio/minio:.*#image: ${minio_image}#" "$MANIFESTS/minio.yaml" | kubectl apply -f -
kubectl -n "$NS" rollout status deployment/media --timeout=180s
kubectl -n "$NS" rollout status deployment/minio --timeout=180s
kubectl -n "$NS" wait --for=condition=Complete job/make-bucket --timeout=180s

log "submitting the VideoProcessingJobs"
kubectl apply -f "$MANIFESTS/jobs.yaml"
# Poll the phases so that a failed job ends the run at once (kubectl wait would sit out the
# whole timeout), then use kubectl wait on the Complete condition as users do.
deadline=$((SECONDS + ${TIMEOUT%s}))
while :; do
  phases="$(kubectl -n "$NS" get vpj e2e-pvc e2e-s3 \
    -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{" "}{end}')"
  echo "phases: $phases"
  case "$phases" in
    *=Failed* | *=Cancelled*)
      kubectl -n "$NS" get vpj -o jsonpath='{range .items[*]}{.metadata.name}: {.status.error}{"\n"}{end}' >&2
      fail "a VideoProcessingJob did not succeed: $phases"
      ;;
  esac
  [ "$phases" = "e2e-pvc=Succeeded e2e-s3=Succeeded " ] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "the VideoProcessingJobs did not finish within $TIMEOUT"
  sleep 5
done
kubectl -n "$NS" wait --for=condition=Complete vpj/e2e-pvc vpj/e2e-s3 --timeout=60s
kubectl -n "$NS" get vpj -o wide

log "checking status"
kubectl -n "$NS" get vpj -o json >"$ARTIFACTS/vpj.json"
python3 - "$ARTIFACTS/vpj.json" <<'PY'
import json
import sys

items = {i["metadata"]["name"]: i for i in json.load(open(sys.argv[1]))["items"]}
expected_segments = {"e2e-pvc": 2, "e2e-s3": 2}
problems = []
for name, count in expected_segments.items():
    status = items[name].get("status", {})
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    if status.get("phase") != "Succeeded":
        problems.append(f"{name}: phase {status.get('phase')!r}")
    if conditions.get("Complete", {}).get("status") != "True":
        problems.append(f"{name}: condition Complete is not True")
    if conditions.get("Failed", {}).get("status") == "True":
        problems.append(f"{name}: condition Failed is True")
    if status.get("observedGeneration") != items[name]["metadata"]["generation"]:
        problems.append(f"{name}: observedGeneration lags")
    segments = status.get("segments", [])
    if len(segments) != count:
        problems.append(f"{name}: {len(segments)} segment results, expected {count}")
    if status.get("segmentsSummary") != f"{count}/{count}":
        problems.append(f"{name}: segmentsSummary {status.get('segmentsSummary')!r}")
    if not status.get("manifestUri"):
        problems.append(f"{name}: no manifestUri")
    if not status.get("source", {}).get("durationSeconds"):
        problems.append(f"{name}: no probed source duration")
    for seg in segments:
        for f in seg.get("files", []):
            if not f.get("uri") or not f.get("bytes"):
                problems.append(f"{name}: file without uri/bytes: {f}")
if problems:
    sys.exit("status problems:\n  " + "\n  ".join(problems))
print("status OK:", {n: items[n]["status"]["segmentsSummary"] for n in expected_segments})
PY

log "checking events"
events="$(kubectl -n "$NS" get events --field-selector involvedObject.kind=VideoProcessingJob -o name)"
[ -n "$events" ] || fail "the operator recorded no events for the VideoProcessingJobs"

log "checking the clips"
kubectl apply -f "$MANIFESTS/check-clips.yaml"
for pod in check-pvc check-s3; do
  kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$pod" --timeout=180s
  kubectl -n "$NS" logs "pod/$pod" >"$ARTIFACTS/$pod.json"
done
python3 - "$ARTIFACTS/check-pvc.json" "$ARTIFACTS/check-s3.json" <<'PY'
import json
import sys

pvc = json.load(open(sys.argv[1]))
s3 = json.load(open(sys.argv[2]))
problems = []
mp4 = {k: v for k, v in pvc.items() if k.endswith(".mp4")}
if len(mp4) != 2:
    problems.append(f"PVC: expected 2 mp4 clips, found {sorted(pvc)}")
for key, entry in mp4.items():
    # Segments are 5 s and 6 s long; precision "accurate" cuts frame-exactly.
    if not 4.5 <= entry["duration"] <= 6.5:
        problems.append(f"PVC: {key} lasts {entry['duration']:.2f}s")
    if entry["bytes"] < 1000:
        problems.append(f"PVC: {key} is only {entry['bytes']} bytes")
for ext, count in ((".mp4", 2), (".webm", 2)):
    found = [k for k in s3 if k.endswith(ext)]
    if len(found) != count:
        problems.append(f"S3: expected {count} {ext} clips, found {sorted(s3)}")
if not any(k.endswith(".json") for k in s3):
    problems.append(f"S3: no manifest among {sorted(s3)}")
if problems:
    sys.exit("clip problems:\n  " + "\n  ".join(problems))
print(f"clips OK: {len(pvc)} files on the PVC, {len(s3)} objects in MinIO")
PY

log "checking metrics"
# From the leader itself: a standby behind the Service has no metrics to show.
metrics_port="$(kubectl -n "$SYSTEM_NS" get pod "$leader" \
  -o jsonpath='{.spec.containers[0].ports[?(@.name=="metrics")].containerPort}')"
metrics="$(kubectl get --raw "/api/v1/namespaces/$SYSTEM_NS/pods/$leader:$metrics_port/proxy/metrics")"
grep -Eq '^videojobs_jobs\{phase="Succeeded"\} 2(\.0)?$' <<<"$metrics" \
  || fail "metrics do not show 2 succeeded jobs: $(grep '^videojobs_jobs' <<<"$metrics")"

log "checking the gateway"
# A user of the job namespace only: a ServiceAccount with a Role on VideoProcessingJobs there.
# The gateway (auth mode client) checks its token with a TokenReview for its own audience
# (videojobs-gateway) and writes with that same token (no impersonation): the token is minted
# for the gateway and for the API server. A token for the API server only is refused (401).
kubectl -n "$NS" create serviceaccount e2e-user
kubectl -n "$NS" create role e2e-user --resource=videoprocessingjobs.videojobs.io \
  --verb=get,list,watch,create,patch,delete
kubectl -n "$NS" create rolebinding e2e-user --role=e2e-user --serviceaccount="$NS:e2e-user"
api_token="$(kubectl -n "$NS" create token e2e-user --duration=10m)"
api_audience="$(python3 -c 'import base64, json, sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["aud"][0])' "$api_token")"
user_token="$(kubectl -n "$NS" create token e2e-user --duration=1h \
  --audience videojobs-gateway --audience "$api_audience")"
kubectl -n "$SYSTEM_NS" port-forward "svc/$RELEASE-gateway" "$GATEWAY_PORT:80" \
  >"$ARTIFACTS/port-forward-gateway.log" 2>&1 &
port_forwards+=("$!")
kubectl -n "$NS" port-forward svc/minio "$MINIO_PORT:9000" \
  >"$ARTIFACTS/port-forward-minio.log" 2>&1 &
port_forwards+=("$!")
for _ in $(seq 60); do  # until the port-forward answers
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $api_token" \
    "http://127.0.0.1:$GATEWAY_PORT/api/v1/videos/jobs?namespace=$NS" || true)"
  [[ "$code" != 000 ]] && break
  sleep 0.5
done
[[ "$code" == 401 ]] || fail "a token without the gateway's audience got HTTP $code, not 401"
python3 "$HERE/gateway_check.py" "http://127.0.0.1:$GATEWAY_PORT" "$NS" "$user_token" \
  --other-namespace "$SYSTEM_NS" \
  --s3 '{"bucket": "clips", "prefix": "e2e-gateway",
         "endpoint": "http://minio.videojobs-e2e.svc.cluster.local:9000", "region": "us-east-1",
         "forcePathStyle": true,
         "credentialsSecretRef": {"name": "clips-s3", "key": "AWS_ACCESS_KEY_ID"}}'

log "uninstalling"
kubectl delete -f "$MANIFESTS/jobs.yaml" --wait --timeout=120s
helm uninstall "$RELEASE" --namespace "$SYSTEM_NS" --wait --timeout 2m

log "end-to-end test passed"
