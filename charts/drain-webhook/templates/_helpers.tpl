{{/* Chart name, overridable. */}}
{{- define "drain-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: object names of the Deployment, Service, webhook configuration, RBAC. */}}
{{- define "drain-webhook.fullname" -}}
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

{{- define "drain-webhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "drain-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "drain-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "drain-webhook.labels" -}}
helm.sh/chart: {{ include "drain-webhook.chart" . }}
{{ include "drain-webhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "drain-webhook.serviceAccountName" -}}
{{- default (include "drain-webhook.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "drain-webhook.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "drain-webhook.fullname" .)) .Values.certificates.secretName }}
{{- end }}

{{/* DNS names the serving certificate must cover. */}}
{{- define "drain-webhook.dnsNames" -}}
{{- $svc := include "drain-webhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.certificates.clusterDomain) | toJson }}
{{- end }}

{{- define "drain-webhook.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end }}

{{- define "drain-webhook.helperImage" -}}
{{- $helper := .Values.settings.helper.image -}}
{{- printf "%s:%s" $helper.repository (default .Chart.AppVersion $helper.tag) -}}
{{- end }}

{{/*
Seconds in a duration value ("15", 15, "10s", "1m30s", "1.5m", "500ms"), rounded up, as the
server rounds. Used to check terminationGracePeriodSeconds against the shutdown delay.
*/}}
{{- define "drain-webhook.seconds" -}}
{{- $text := toString . -}}
{{- if regexMatch "^[0-9]+$" $text -}}
{{- $text -}}
{{- else -}}
{{- $millis := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" $text -1 -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 -}}
{{- $unit := regexFind "(ms|s|m|h)$" . -}}
{{- $scale := get (dict "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0) $unit -}}
{{- $millis = addf $millis (mulf $number $scale) -}}
{{- end -}}
{{- divf $millis 1000.0 | ceil | int -}}
{{- end -}}
{{- end }}

{{/* The server's certificate mode for the chart's certificate mode. */}}
{{- define "drain-webhook.serverCertMode" -}}
{{- if eq .Values.certificates.mode "self-managed" -}}
self-managed
{{- else -}}
files
{{- end -}}
{{- end }}

{{/* Checks that cannot be written in values.schema.json. */}}
{{- define "drain-webhook.validate" -}}
{{- $delay := include "drain-webhook.seconds" .Values.server.shutdownDelay | int -}}
{{- $needed := add $delay .Values.webhook.timeoutSeconds -}}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed server.shutdownDelay (%ds) plus webhook.timeoutSeconds (%ds), or reviews in flight are killed on shutdown" (int .Values.terminationGracePeriodSeconds) $delay (int .Values.webhook.timeoutSeconds)) -}}
{{- end -}}
{{- /* Without this, Helm fails late with its generic "no matches for kind Certificate". */ -}}
{{- if and (eq .Values.certificates.mode "cert-manager") (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
{{- fail "certificates.mode=cert-manager, but this cluster does not serve cert-manager.io/v1: install cert-manager first (https://cert-manager.io/docs/installation/), or pick certificates.mode=self-managed (the webhook makes and rotates its own certificate; needs nothing else) or certificates.mode=chart (Helm generates it). With helm template, pass --api-versions cert-manager.io/v1 to render for a cluster that has it." -}}
{{- end -}}
{{- if eq (int .Values.server.webhookPort) (int .Values.server.adminPort) -}}
{{- fail "server.webhookPort and server.adminPort must differ" -}}
{{- end -}}
{{- end }}

{{/* The --profiles-file document built from settings.profiles. */}}
{{- define "drain-webhook.profilesJson" -}}
{{- dict "profiles" .Values.settings.profiles | toJson -}}
{{- end }}
