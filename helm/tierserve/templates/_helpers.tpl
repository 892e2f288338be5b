{{/* Names and labels. */}}
{{- define "tierserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tierserve.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tierserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tierserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tierserve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tierserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tierserve.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding tenants' API keys, if any. */}}
{{- define "tierserve.apiKeysSecret" -}}
{{- if .Values.apiKeys.existingSecret -}}
{{- .Values.apiKeys.existingSecret -}}
{{- else if .Values.apiKeys.tenants -}}
{{- printf "%s-api-keys" (include "tierserve.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The environment variable carrying one tenant's keys. */}}
{{- define "tierserve.tenantKeysEnv" -}}
{{- printf "TIERSERVE_API_KEYS_%s" (. | upper | replace "-" "_") -}}
{{- end -}}

{{- define "tierserve.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "tierserve.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{/* Policy files (path -> content): the values' files, else the bundled support policy. The
main policy file's tenants lose inline api_keys and take them from their Secret's variable. */}}
{{- define "tierserve.policyFiles" -}}
{{- $files := dict -}}
{{- if .Values.policy.files -}}
{{- $files = deepCopy .Values.policy.files -}}
{{- else -}}
{{- range $path, $_ := .Files.Glob "files/policy/**" -}}
{{- $_ := set $files (trimPrefix "files/policy/" $path) ($.Files.Get $path) -}}
{{- end -}}
{{- end -}}
{{- $main := get $files .Values.policy.file -}}
{{- if not $main -}}
{{- fail (printf "policy.file %q is not among the policy files %v; set policy.file to the policy's name" .Values.policy.file (keys $files | sortAlpha)) -}}
{{- end -}}
{{- $policy := fromYaml $main -}}
{{- $ids := list -}}
{{- range $tenant := $policy.tenants -}}
{{- $ids = append $ids $tenant.id -}}
{{- end -}}
{{- range $name, $_ := .Values.apiKeys.tenants -}}
{{- if not (has $name $ids) -}}
{{- fail (printf "apiKeys.tenants.%s: %q is not a tenant of policy %s (its tenants: %s); use one of those names" $name $name $.Values.policy.file (join ", " $ids)) -}}
{{- end -}}
{{- end -}}
{{- $secretTenants := .Values.apiKeys.existingSecretTenants -}}
{{- range $name := $secretTenants -}}
{{- if not (has $name $ids) -}}
{{- fail (printf "apiKeys.existingSecretTenants: %q is not a tenant of policy %s (its tenants: %s); use one of those names" $name $.Values.policy.file (join ", " $ids)) -}}
{{- end -}}
{{- end -}}
{{- range $tenant := $policy.tenants -}}
{{- $_ := unset $tenant "api_keys" -}}
{{- /* With an existing Secret, the tenants it holds keys for: those listed, else every
tenant but the default one (the keyless callers' tenant needs none), so a Secret without a
key for it is not refused at deploy time. */ -}}
{{- $fromSecret := false -}}
{{- if $.Values.apiKeys.existingSecret -}}
{{- if $secretTenants -}}
{{- $fromSecret = has $tenant.id $secretTenants -}}
{{- else -}}
{{- $fromSecret = ne $tenant.id $policy.default_tenant -}}
{{- end -}}
{{- end -}}
{{- if or $fromSecret (hasKey $.Values.apiKeys.tenants $tenant.id) -}}
{{- $_ := set $tenant "api_keys_env" (include "tierserve.tenantKeysEnv" $tenant.id) -}}
{{- end -}}
{{- end -}}
{{- if .Values.apiKeys.required -}}
{{- $auth := default (dict) $policy.auth -}}
{{- $_ := set $auth "require_keys" true -}}
{{- $_ := set $policy "auth" $auth -}}
{{- end -}}
{{- $_ := set $files .Values.policy.file (toYaml $policy) -}}
{{- toYaml $files -}}
{{- end -}}

{{/* The Serve config KubeRay deploys: the stack as the app's args, the mounted policy, and
the policy's files as the gateway's user_config. */}}
{{- define "tierserve.serveConfig" -}}
{{- $args := deepCopy .Values.stack -}}
{{- $_ := set $args "policy" (printf "%s/%s" .Values.policy.mountPath .Values.policy.file) -}}
{{- $app := dict "name" "tierserve" "route_prefix" "/" "import_path" "tierserve.serve.app:build_app" "args" $args -}}
{{- /* The policy's files also ride in the gateway's user_config: a change to them changes
only that, so KubeRay updates the running app in place and the gateway replicas swap to the
new version (tierserve.serve.rollout.PolicyFiles) while no tier restarts. The args name the
mounted file, for the app's first build. */}}
{{- if not .Values.policy.existingConfigMap -}}
{{- $policyFiles := dict "file" .Values.policy.file "files" (include "tierserve.policyFiles" . | fromYaml) -}}
{{- $gateway := dict "name" "gateway" "user_config" (dict "policy_files" $policyFiles) -}}
{{- $_ := set $app "deployments" (list $gateway) -}}
{{- end -}}
{{- $http := dict "host" "0.0.0.0" "port" 8000 -}}
{{- toYaml (dict "proxy_location" "EveryNode" "http_options" $http "applications" (list $app)) -}}
{{- end -}}

{{/* What every Ray container shares: env, volumes, mounts. Ray Serve reads its ingress
(stack.gateway.ingress) from the environment when it starts. */}}
{{- define "tierserve.containerCommon" -}}
{{- $ingress := (.Values.stack.gateway | default dict).ingress | default "haproxy" }}
env:
  - name: RAY_SERVE_ENABLE_HA_PROXY
    value: {{ ternary "1" "0" (eq $ingress "haproxy") | quote }}
  {{- if eq $ingress "haproxy" }}
  {{- /* A request whose gateway replica died before answering is sent again rather than
  answered 500; the second line reaches Ray's HAProxy template as a line of its own, so HAProxy
  holds each request whole and can send it again (tierserve.serve.ingress.HAPROXY_RETRIES). */}}
  - name: RAY_SERVE_HAPROXY_RETRY_ON
    value: "conn-failure empty-response\n    option http-buffer-request"
  - name: RAY_SERVE_HAPROXY_RETRIES
    value: "10"
  {{- end }}
  - name: TIERSERVE_STATE_DIR
    value: /home/ray/state
  - name: HF_HOME
    value: /home/ray/.cache/huggingface
  {{- with .Values.env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $secret := include "tierserve.apiKeysSecret" . }}
{{- if or $secret .Values.envFrom }}
envFrom:
  {{- if $secret }}
  - secretRef:
      name: {{ $secret }}
  {{- end }}
  {{- with .Values.envFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
volumeMounts:
  - name: policy
    mountPath: {{ .Values.policy.mountPath }}
    readOnly: true
  - name: state
    mountPath: /home/ray/state
  - name: model-cache
    mountPath: /home/ray/.cache/huggingface
  - name: dshm
    mountPath: /dev/shm
{{- end -}}

{{- define "tierserve.volumes" -}}
- name: policy
  configMap:
    name: {{ include "tierserve.policyConfigMap" . }}
    {{- if .Values.policy.existingConfigMap }}
    {{- with .Values.policy.existingConfigMapItems }}
    items:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- else }}
    items:
      {{- range $path, $_ := (include "tierserve.policyFiles" . | fromYaml) }}
      - key: {{ $path | replace "/" "__" }}
        path: {{ $path }}
      {{- end }}
    {{- end }}
- name: state
  {{- if .Values.state.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.state.existingClaim }}
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: model-cache
  {{- if .Values.modelCache.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.modelCache.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ .Values.modelCache.sizeLimit }}
  {{- end }}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.shmSize }}
{{- end -}}

{{- define "tierserve.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 1000
  fsGroup: 100
volumes:
  {{- include "tierserve.volumes" . | nindent 2 }}
{{- end -}}

{{/* Ray start parameters as the strings KubeRay expects, in flow style ({} when none). */}}
{{- define "tierserve.startParams" -}}
{{- $params := dict -}}
{{- range $key, $value := . -}}
{{- $_ := set $params $key (toString $value) -}}
{{- end -}}
{{- toJson $params -}}
{{- end -}}
