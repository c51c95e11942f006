{{/* Base name of every object: `updraft` unless fullnameOverride says otherwise. */}}
{{- define "updraft.fullname" -}}
{{- default "updraft" .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels manifests/ puts on every object, then the ones Helm's conventions add. */}}
{{- define "updraft.labels" -}}
app.kubernetes.io/name: updraft
app.kubernetes.io/part-of: updraft
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector (and pod template) labels of one component: `include "updraft.selector" "adapter"`. */}}
{{- define "updraft.selector" -}}
{app.kubernetes.io/name: updraft, app.kubernetes.io/component: {{ . }}}
{{- end -}}

{{- define "updraft.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "updraft.servingSecret" -}}
{{ include "updraft.fullname" . }}-serving-cert
{{- end -}}

{{/* The certificate mode in force: `auto` resolved against the cluster's APIs. */}}
{{- define "updraft.certMode" -}}
{{- $mode := .Values.certificates.mode -}}
{{- if not (has $mode (list "auto" "generate" "certManager" "external")) -}}
{{- fail (printf "certificates.mode: %q is not one of auto, generate, certManager, external" $mode) -}}
{{- end -}}
{{- if eq $mode "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1" -}}certManager{{- else -}}generate{{- end -}}
{{- else -}}
{{ $mode }}
{{- end -}}
{{- end -}}

{{/* The serving CA and pair for `generate`: the ones already in the Secret when an earlier
install made them (so upgrades keep the pair and caBundle), else a new CA and pair. Called once
per render through the `updraft.generated` cache below, so the Secret and caBundle agree. */}}
{{- define "updraft.generateCerts" -}}
{{- $name := include "updraft.servingSecret" . -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- if and $existing $existing.data (index $existing.data "ca.crt") (index $existing.data "tls.crt") (index $existing.data "tls.key") -}}
{{- dict "ca" (index $existing.data "ca.crt") "crt" (index $existing.data "tls.crt") "key" (index $existing.data "tls.key") | toJson -}}
{{- else -}}
{{- $service := printf "%s.%s.svc" (include "updraft.fullname" .) .Release.Namespace -}}
{{- $days := int .Values.certificates.validityDays -}}
{{- $ca := genCA (printf "%s-ca" (include "updraft.fullname" .)) $days -}}
{{- $pair := genSignedCert $service nil (list $service (printf "%s.cluster.local" $service)) $days $ca -}}
{{- dict "ca" ($ca.Cert | b64enc) "crt" ($pair.Cert | b64enc) "key" ($pair.Key | b64enc) | toJson -}}
{{- end -}}
{{- end -}}

{{/* The generated pair, computed once per render and shared by the Secret and APIServices. */}}
{{- define "updraft.generated" -}}
{{- if not (hasKey .Values.certificates "_generated") -}}
{{- $_ := set .Values.certificates "_generated" (include "updraft.generateCerts" . | fromJson) -}}
{{- end -}}
{{- .Values.certificates._generated | toJson -}}
{{- end -}}
