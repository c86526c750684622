{{/*
Chart name, used in the app.kubernetes.io/name label that the gateway selects agents by.
*/}}
{{- define "gpu-mcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource name prefix: the release name, followed by the chart name unless the release name already holds it.
Kept at 50 characters so that suffixes such as "-gateway" stay within the 63-character limit.
*/}}
{{- define "gpu-mcp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gpu-mcp.agentName" -}}
{{- printf "%s-agent" (include "gpu-mcp.fullname" .) }}
{{- end }}

{{- define "gpu-mcp.gatewayName" -}}
{{- printf "%s-gateway" (include "gpu-mcp.fullname" .) }}
{{- end }}

{{/*
Labels common to every object.
*/}}
{{- define "gpu-mcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "gpu-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: k8s-gpu-mcp-server
{{- end }}

{{/*
Selector labels of the agents. The gateway's --selector is built from exactly these.
*/}}
{{- define "gpu-mcp.agentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{/*
The agent selector as a label-selector string, for the gateway's --selector flag.
*/}}
{{- define "gpu-mcp.agentSelector" -}}
{{- printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s,app.kubernetes.io/component=agent" (include "gpu-mcp.name" .) .Release.Name }}
{{- end }}

{{- define "gpu-mcp.gatewaySelectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "gpu-mcp.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Whether the node's kernel log is mounted into agent pods: only for real GPUs.
Renders "true" or nothing.
*/}}
{{- define "gpu-mcp.kmsgMounted" -}}
{{- if and .Values.agent.kmsg.enabled (eq .Values.agent.nvmlMode "real") }}true{{ end }}
{{- end }}

{{/*
Name of the Secret holding the bearer token.
*/}}
{{- define "gpu-mcp.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else }}
{{- printf "%s-auth" (include "gpu-mcp.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Directory where the bearer token is mounted, and the token file inside it.
*/}}
{{- define "gpu-mcp.authDir" -}}
/etc/gpu-mcp/auth
{{- end }}

{{- define "gpu-mcp.authTokenFile" -}}
{{- printf "%s/%s" (include "gpu-mcp.authDir" .) .Values.auth.secretKey }}
{{- end }}

{{/*
The key of the token the agents require: the gateway's own token when the gateway is enabled
(a client's token is never forwarded), else the token clients send.
*/}}
{{- define "gpu-mcp.agentAuthKey" -}}
{{- if .Values.gateway.enabled }}{{ .Values.auth.agentSecretKey }}{{ else }}{{ .Values.auth.secretKey }}{{ end }}
{{- end }}

{{- define "gpu-mcp.agentAuthTokenFile" -}}
{{- printf "%s/%s" (include "gpu-mcp.authDir" .) (include "gpu-mcp.agentAuthKey" .) }}
{{- end }}
