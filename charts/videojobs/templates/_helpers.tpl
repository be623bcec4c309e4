{{/*
Names, labels and derived settings shared by every template.
*/}}

{{- define "videojobs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "videojobs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "videojobs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "videojobs.labels" -}}
helm.sh/chart: {{ include "videojobs.chart" . }}
{{ include "videojobs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: videojobs
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "videojobs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "videojobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of the operator pods. */}}
{{- define "videojobs.operatorSelectorLabels" -}}
{{ include "videojobs.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "videojobs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "videojobs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "videojobs.operatorImage" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "videojobs.workerImage" -}}
{{- default (printf "ghcr.io/videojobs/videojobs-worker:%s" .Chart.AppVersion) .Values.operator.config.workerImage }}
{{- end }}

{{/* The watched namespaces (a list, possibly empty). */}}
{{- define "videojobs.namespaces" -}}
{{- toJson (default (list) .Values.operator.config.namespaces) }}
{{- end }}

{{/* Whether the chart provisions the worker ServiceAccount/Role/RoleBinding: "true" or "". */}}
{{- define "videojobs.chartManagesWorkerRbac" -}}
{{- if and .Values.workerRbac.create .Values.operator.config.namespaces }}true{{ end }}
{{- end }}

{{/* The operator's effective manageWorkerRbac setting: "true" or "false". */}}
{{- define "videojobs.manageWorkerRbac" -}}
{{- if kindIs "bool" .Values.operator.config.manageWorkerRbac }}
{{- .Values.operator.config.manageWorkerRbac }}
{{- else if include "videojobs.chartManagesWorkerRbac" . }}false
{{- else }}true
{{- end }}
{{- end }}

{{/* The operator's rules: rbac.py's OPERATOR_RULES (+ WORKER_RBAC_RULES when it provisions). */}}
{{- define "videojobs.operatorRules" -}}
{{- $rbac := .Files.Get "files/rbac.yaml" | fromYaml }}
{{- $rules := $rbac.operator }}
{{- if eq (include "videojobs.manageWorkerRbac" .) "true" }}
{{- $rules = concat $rules $rbac.workerRbac }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{- define "videojobs.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.operator.config.leaderElectionNamespace }}
{{- end }}

{{/*
Render one settings value as an environment variable string: strings as they are, lists joined
by commas (the operator splits them), numbers and booleans as JSON (no 1e+06 forms).
*/}}
{{- define "videojobs.envValue" -}}
{{- if kindIs "string" . }}
{{- . }}
{{- else if kindIs "slice" . }}
{{- join "," . }}
{{- else }}
{{- toJson . }}
{{- end }}
{{- end }}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "videojobs.validate" -}}
{{- if and (eq .Values.rbac.scope "namespaced") (not .Values.operator.config.namespaces) }}
{{- fail "rbac.scope=namespaced needs at least one namespace in operator.config.namespaces" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.operator.config.leaderElection) }}
{{- fail "replicaCount > 1 needs operator.config.leaderElection=true, or replicas would run jobs twice" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" }}
{{- end }}
{{- if eq (int .Values.operator.config.metricsPort) (int .Values.operator.healthPort) }}
{{- fail "operator.config.metricsPort and operator.healthPort must differ" }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress rules every videojobs pod needs: cluster DNS and the API server. */}}
{{- define "videojobs.egressDnsAndApi" -}}
# DNS, in whichever namespace the cluster DNS runs.
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 10 }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- with .Values.networkPolicy.dns.nodeLocalAddresses }}
# NodeLocal DNSCache: pods' resolv.conf points at a link-local address on the node, not a pod.
- to:
    {{- range . }}
    - ipBlock:
        cidr: {{ contains ":" . | ternary (printf "%s/128" .) (printf "%s/32" .) }}
    {{- end }}
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}
# The Kubernetes API server{{ if not .Values.networkPolicy.apiServer.cidrs }} (any address on its ports: set networkPolicy.apiServer.cidrs){{ end }}.
{{- if .Values.networkPolicy.apiServer.cidrs }}
- to:
    {{- range .Values.networkPolicy.apiServer.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
{{- else }}
- ports:
{{- end }}
    {{- range .Values.networkPolicy.apiServer.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}

{{/* Annotations of every worker ServiceAccount (chart-made or operator-made), as a dict. */}}
{{- define "videojobs.workerSaAnnotations" -}}
{{- merge (deepCopy (.Values.operator.config.workerServiceAccountAnnotations | default dict)) (.Values.workerRbac.serviceAccountAnnotations | default dict) | toJson }}
{{- end }}

{{/* Secret names every worker ServiceAccount pulls images with, as a JSON list. */}}
{{- define "videojobs.workerPullSecrets" -}}
{{- $names := list }}
{{- range .Values.workerRbac.imagePullSecrets }}
{{- if kindIs "map" . }}
{{- $names = append $names .name }}
{{- else }}
{{- $names = append $names . }}
{{- end }}
{{- end }}
{{- range .Values.operator.config.workerImagePullSecrets }}
{{- $names = append $names . }}
{{- end }}
{{- $names | uniq | toJson }}
{{- end }}

{{/* The gateway: names, selector, image, served namespaces, clips claim. */}}
{{- define "videojobs.gatewayName" -}}
{{- printf "%s-gateway" (include "videojobs.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "videojobs.gatewaySelectorLabels" -}}
{{ include "videojobs.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "videojobs.gatewayServiceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "videojobs.gatewayName" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name is required when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "videojobs.gatewayImage" -}}
{{- $img := .Values.gateway.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/* The namespaces the gateway serves, as JSON (empty: every namespace). */}}
{{- define "videojobs.gatewayNamespaces" -}}
{{- toJson (default (default (list) .Values.operator.config.namespaces) .Values.gateway.namespaces) }}
{{- end }}

{{/* The clips claim the gateway mounts read-only ("" for none). */}}
{{- define "videojobs.gatewayClaim" -}}
{{- if .Values.gateway.clips.claimName }}
{{- .Values.gateway.clips.claimName }}
{{- else if and .Values.clipsPvc.create (or (not .Values.operator.config.namespaces) (has .Release.Namespace .Values.operator.config.namespaces)) }}
{{- /* A pod mounts claims of its own namespace only: the chart's clips PVC qualifies when it is
rendered in the release namespace, i.e. when the operator watches it. */}}
{{- .Values.clipsPvc.name }}
{{- end }}
{{- end }}
