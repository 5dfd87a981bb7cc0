{{/* Chart name, truncated to what a label allows. */}}
{{- define "secretsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "secretsync.fullname" -}}
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

{{- define "secretsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "secretsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secretsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "secretsync.labels" -}}
helm.sh/chart: {{ include "secretsync.chart" . }}
{{ include "secretsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: secretsync
{{- end }}

{{- define "secretsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "secretsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "secretsync.leaseName" -}}
{{- default (printf "%s-leader" (include "secretsync.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "secretsync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The controller's namespaced permissions, in the namespace of each SecretSync it serves: granted
cluster-wide by the ClusterRole, or per watched namespace by a Role (watchNamespaces).
Each rule is one call the controller makes (src/controller/kube/*.ts, informer.ts):
*/}}
{{- define "secretsync.namespacedRules" -}}
# SecretSyncs: the informer lists and watches them, reconcile gets one, and adds/removes its
# finalizer by server-side apply (patch).
- apiGroups: [secretsync.io]
  resources: [secretsyncs]
  verbs: [get, list, watch, patch]
# The Ready condition and the controller's status fields, by server-side apply.
- apiGroups: [secretsync.io]
  resources: [secretsyncs/status]
  verbs: [patch]
# The target Secret is created empty if missing (a 409 means it exists) and deleted for
# deletionPolicy Delete. Never get, list or watch: the controller does not read secret values.
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, delete]
# The function's Role and RoleBinding: read to diff, server-side apply (patch; an apply that
# creates the object is also authorized as create), delete on teardown (and a RoleBinding whose
# roleRef changed).
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, delete]
# RBAC escalation prevention: the function's Role grants secrets get/patch/update (one name),
# which the controller itself does not hold, so writing it needs "escalate"; binding that Role
# needs "bind". Names are per SecretSync (hashed), so they cannot be listed here.
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [escalate, bind]
# Events on a SecretSync for Ready transitions (core/v1 Events, created only).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{- define "secretsync.clusterRules" -}}
# Tenancy (--tenancy=tag): SecretSyncPolicies are cluster-scoped; the controller lists them when
# an AWS secret's tag does not allow a SecretSync's namespace.
- apiGroups: [secretsync.io]
  resources: [secretsyncpolicies]
  verbs: [list]
# ...and reads that SecretSync's Namespace for its labels when a policy has a namespaceSelector.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
{{- end }}

{{/* aws.rateLimits as the controller's --aws-rate-limits text, e.g. "eks=5,iam=5". */}}
{{- define "secretsync.rateLimits" -}}
{{- $parts := list -}}
{{- range $service, $rate := . -}}
{{- $parts = append $parts (printf "%s=%s" $service (toString $rate)) -}}
{{- end -}}
{{- join "," $parts -}}
{{- end }}
