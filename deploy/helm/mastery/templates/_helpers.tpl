{{/* The chart's name, for labels. */}}
{{- define "mastery.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for every resource name. */}}
{{- define "mastery.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every resource carries. */}}
{{- define "mastery.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/name: {{ include "mastery.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select one service's pods; call with (dict "root" $ "service" $name). */}}
{{- define "mastery.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mastery.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{/* The image every mastery process runs. */}}
{{- define "mastery.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The secret holding URLs and keys: the operator's, or the chart's. */}}
{{- define "mastery.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "mastery.fullname" .)) -}}
{{- end -}}

{{/* The NATS URL: the bundled cluster's client service, or config.natsUrl. */}}
{{- define "mastery.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- $host := printf "%s-nats" .Release.Name -}}
{{- if contains "nats" .Release.Name -}}
{{- $host = .Release.Name -}}
{{- end -}}
{{- printf "nats://%s:4222" $host -}}
{{- else -}}
{{- required "config.natsUrl is needed when nats.enabled is false" .Values.config.natsUrl -}}
{{- end -}}
{{- end -}}

{{/* The database URLs and keys as environment variables, from the secret. */}}
{{- define "mastery.secretEnv" -}}
- name: MASTERY_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mastery.secretName" . }}
      key: database-url
- name: MASTERY_MIGRATION_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mastery.secretName" . }}
      key: migration-database-url
- name: MASTERY_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "mastery.secretName" . }}
      key: jwt-secret
      optional: true
- name: MASTERY_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mastery.secretName" . }}
      key: key-encryption-key
{{- end -}}
