{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "adapter-registry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart unless the release name already holds it. */}}
{{- define "adapter-registry.fullname" -}}
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

{{- define "adapter-registry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "adapter-registry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "adapter-registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "adapter-registry.labels" -}}
helm.sh/chart: {{ include "adapter-registry.chart" . }}
{{ include "adapter-registry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: adapter-registry
{{- end }}

{{- define "adapter-registry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "adapter-registry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "adapter-registry.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: pin a version, not latest" }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/* "group.field" -> REGISTRY_GROUP__FIELD (registry/settings.py, env_nested_delimiter "__"). */}}
{{- define "adapter-registry.settingEnvName" -}}
{{- printf "REGISTRY_%s" (. | replace "." "__" | upper) }}
{{- end }}

{{- define "adapter-registry.auditKeyPath" -}}
{{- if .Values.audit.signingKey.existingSecret -}}
/etc/adapter-registry/audit/{{ .Values.audit.signingKey.key }}
{{- else -}}
/var/lib/adapter-registry/audit/signing-key.pem
{{- end }}
{{- end }}

{{/*
The registry's environment, shared by the API Deployment and the migration Job: database URL
and S3 credentials from Secrets, the rest plain. Every REGISTRY_* name here is a setting of
registry/settings.py (tests/deploy checks it).
*/}}
{{/* The database URL from its Secret; the schema is migrated by the hook Job only. */}}
{{- define "adapter-registry.databaseEnv" -}}
{{- if not .Values.database.existingSecret }}
{{- fail "database.existingSecret is required: a Secret with the PostgreSQL URL (see docs/deploy.md)" }}
{{- end }}
- name: REGISTRY_DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
- name: REGISTRY_DATABASE__AUTO_MIGRATE
  value: "false"
{{- end }}

{{- define "adapter-registry.env" -}}
{{- if not .Values.storage.bucket }}
{{- fail "storage.bucket is required: artifacts live in S3 (see docs/deploy.md)" }}
{{- end }}
{{ include "adapter-registry.databaseEnv" . | trim }}
- name: REGISTRY_DATABASE__POOL_SIZE
  value: {{ .Values.database.poolSize | quote }}
- name: REGISTRY_DATABASE__MAX_OVERFLOW
  value: {{ .Values.database.maxOverflow | quote }}
- name: REGISTRY_STORAGE__BACKEND
  value: "s3"
- name: REGISTRY_STORAGE__BUCKET
  value: {{ .Values.storage.bucket | quote }}
{{- with .Values.storage.prefix }}
- name: REGISTRY_STORAGE__PREFIX
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.endpointUrl }}
- name: REGISTRY_STORAGE__ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: REGISTRY_STORAGE__REGION
  value: {{ .Values.storage.region | quote }}
{{- with .Values.storage.credentials.existingSecret }}
- name: REGISTRY_STORAGE__ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.storage.credentials.accessKeyIdKey }}
- name: REGISTRY_STORAGE__SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.storage.credentials.secretAccessKeyKey }}
{{- end }}
{{- if .Values.policies.enabled }}
- name: REGISTRY_POLICY__DIRECTORY
  value: /etc/adapter-registry/policies
{{- end }}
- name: REGISTRY_CONTROLLER__ENABLED
  value: {{ .Values.controller.enabled | toString | quote }}
- name: REGISTRY_JOBS__ENABLED
  value: {{ .Values.jobs.enabled | toString | quote }}
- name: REGISTRY_JOBS__CONCURRENCY
  value: {{ .Values.jobs.concurrency | toString | quote }}
- name: REGISTRY_WEBHOOKS__ENABLED
  value: {{ .Values.webhooks.enabled | toString | quote }}
- name: REGISTRY_AUDIT__SIGNING_KEY_PATH
  value: {{ include "adapter-registry.auditKeyPath" . | quote }}
{{- range $setting, $value := .Values.settings }}
- name: {{ include "adapter-registry.settingEnvName" $setting }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- range .Values.secretSettings }}
- name: {{ include "adapter-registry.settingEnvName" .setting }}
  valueFrom:
    secretKeyRef:
      name: {{ required "secretSettings[].secretName" .secretName }}
      key: {{ required "secretSettings[].key" .key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The metrics port when set (checked: not the API port), else empty. With several workers the
`serve` parent listens on it for all of them.
*/}}
{{- define "adapter-registry.metricsPort" -}}
{{- if .Values.metricsPort -}}
{{- if eq (int .Values.metricsPort) (int .Values.containerPort) -}}
{{- fail "metricsPort must differ from containerPort" -}}
{{- end -}}
{{- int .Values.metricsPort -}}
{{- end -}}
{{- end }}
