{{/*
Where replicas go: soft or hard anti-affinity across nodes, a soft spread
across zones, then the operator's own affinity, selectors and tolerations.
*/}}
{{- define "image-proxy.scheduling" -}}
{{- $anti := dict }}
{{- $term := dict "labelSelector" (dict "matchLabels" (include "image-proxy.selectorLabels" . | fromYaml)) "topologyKey" "kubernetes.io/hostname" }}
{{- if eq .Values.podAntiAffinity "soft" }}
{{- $anti = dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term)) }}
{{- else if eq .Values.podAntiAffinity "hard" }}
{{- $anti = dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term) }}
{{- end }}
{{- $affinity := deepCopy .Values.affinity }}
{{- if $anti }}
{{- $_ := set $affinity "podAntiAffinity" (merge (get $affinity "podAntiAffinity" | default dict) $anti) }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.zoneSpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "image-proxy.selectorLabels" . | nindent 8 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
