{{/* Chart name, overridable. */}}
{{- define "image-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, or the release name alone when it already
contains the chart name. Truncated to 63 characters (DNS label).
*/}}
{{- define "image-proxy.fullname" -}}
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

{{- define "image-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "image-proxy.labels" -}}
helm.sh/chart: {{ include "image-proxy.chart" . }}
{{ include "image-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "image-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "image-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "image-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "image-proxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pods read secret settings from; empty when none. */}}
{{- define "image-proxy.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.values }}
{{- include "image-proxy.fullname" . }}
{{- end }}
{{- end }}

{{/*
A Kubernetes quantity (2Gi, 512Mi, 1000000) in bytes. The schema allows
only plain numbers and the binary suffixes Ki, Mi, Gi and Ti.
*/}}
{{- define "image-proxy.bytes" -}}
{{- $q := toString . }}
{{- $n := regexFind "^[0-9]+" $q | int64 }}
{{- $unit := trimPrefix (toString $n) $q }}
{{- $mult := get (dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776) $unit }}
{{- mul $n $mult }}
{{- end }}

{{/* The disk tier's volume size: the claim's with persistence, else the emptyDir's. */}}
{{- define "image-proxy.diskVolumeSize" -}}
{{- if .Values.cache.disk.persistence.enabled }}
{{- .Values.cache.disk.persistence.size }}
{{- else }}
{{- .Values.cache.disk.sizeLimit }}
{{- end }}
{{- end }}

{{/*
IMAGE_PROXY_CACHE_DISK_SIZE: 80 % of the volume. diskv's files take whole
blocks and the directory tree its own, and a pod that writes past an
emptyDir's sizeLimit is evicted: the cache keeps well under it.
*/}}
{{- define "image-proxy.diskCacheBytes" -}}
{{- $bytes := include "image-proxy.bytes" (include "image-proxy.diskVolumeSize" .) | int64 }}
{{- div (mul $bytes 8) 10 }}
{{- end }}

{{/* IMAGE_PROXY_STRIP_PATH from pathPrefix: "/static/image" → "static/image/". */}}
{{- define "image-proxy.stripPath" -}}
{{- $p := trimAll "/" .Values.pathPrefix }}
{{- if $p }}{{ $p }}/{{ end }}
{{- end }}

{{/* The Ingress path: "/static/image" for a prefix, "/" without. */}}
{{- define "image-proxy.ingressPath" -}}
{{- $p := trimAll "/" .Values.pathPrefix }}
{{- printf "/%s" $p }}
{{- end }}

{{/* A setting's value as the binary reads it: YAML numbers arrive as float64. */}}
{{- define "image-proxy.settingValue" -}}
{{- if kindIs "float64" . }}
{{- int64 . | toString }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}
