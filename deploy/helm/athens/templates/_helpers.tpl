{{/* The chart's name, or nameOverride. */}}
{{- define "athens.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name of every object, at most 63 characters. */}}
{{- define "athens.fullname" -}}
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

{{- define "athens.selectorLabels" -}}
app.kubernetes.io/name: {{ include "athens.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "athens.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "athens.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "athens.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "athens.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "athens.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.registry }}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Name of the Secret the chart writes (credentials given as values). */}}
{{- define "athens.secretName" -}}
{{- printf "%s-secret" (include "athens.fullname" .) }}
{{- end }}

{{/* Whether a storage's credentials come from the chart's own Secret. */}}
{{- define "athens.storageSecretInChart" -}}
{{- $s := .Values.storage }}
{{- if and (eq $s.type "s3") (not $s.s3.existingSecret) (not $s.s3.useDefaultConfiguration) }}true
{{- else if and (eq $s.type "minio") (not $s.minio.existingSecret) }}true
{{- else if and (eq $s.type "gcp") (not $s.gcp.existingSecret) $s.gcp.serviceAccount }}true
{{- else if and (eq $s.type "azureblob") (not $s.azureblob.existingSecret) }}true
{{- end }}
{{- end }}

{{/* Whether the chart writes a Secret at all. */}}
{{- define "athens.hasSecret" -}}
{{- if or (include "athens.storageSecretInChart" .) (and .Values.basicAuth.enabled (not .Values.basicAuth.existingSecret)) (and (eq .Values.singleFlight.type "redis") .Values.singleFlight.redis.password (not .Values.singleFlight.redis.existingSecret)) .Values.sshGitServers }}true{{- end }}
{{- end }}

{{/* GoBinaryEnvVars: the upstream first, then the extra entries. */}}
{{- define "athens.goBinaryEnvVars" -}}
{{- $entries := list }}
{{- if .Values.upstreamProxy.enabled }}
{{- $entries = append $entries (printf "GOPROXY=%s" .Values.upstreamProxy.url) }}
{{- else }}
{{- $entries = append $entries "GOPROXY=direct" }}
{{- end }}
{{- range .Values.goBinaryEnvVars }}
{{- $entries = append $entries . }}
{{- end }}
{{- join "; " $entries }}
{{- end }}
