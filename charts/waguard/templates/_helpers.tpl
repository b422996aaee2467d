{{/*
Names, labels and the pod's file layout, in one place.
*/}}

{{- define "waguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "waguard.fullname" -}}
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

{{/* The drift scan's CronJob (and its ConfigMap and NetworkPolicy). */}}
{{- define "waguard.scanName" -}}
{{- printf "%s-scan" (include "waguard.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{- define "waguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "waguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "waguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "waguard.labels" -}}
helm.sh/chart: {{ include "waguard.chart" . }}
{{ include "waguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "waguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "waguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "waguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The callers Secret: chart-created when callers.content is set, else the existing one. */}}
{{- define "waguard.callersSecretName" -}}
{{- if .Values.callers.content }}
{{- printf "%s-callers" (include "waguard.fullname" .) }}
{{- else if .Values.callers.existingSecret }}
{{- .Values.callers.existingSecret }}
{{- else }}
{{- fail "callers: set callers.existingSecret (a Secret holding the callers file) or callers.content" }}
{{- end }}
{{- end }}

{{- define "waguard.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else if and .Values.tls.cert .Values.tls.key }}
{{- printf "%s-tls" (include "waguard.fullname" .) }}
{{- else }}
{{- fail "tls.enabled: set tls.existingSecret (a kubernetes.io/tls Secret) or both tls.cert and tls.key" }}
{{- end }}
{{- end }}

{{- define "waguard.servicePort" -}}
{{- if .Values.service.port }}{{ .Values.service.port }}{{ else if .Values.tls.enabled }}443{{ else }}80{{ end }}
{{- end }}

{{/* Where things are inside the pod. */}}
{{- define "waguard.configDir" -}}/etc/waguard{{- end }}
{{- define "waguard.callersDir" -}}/etc/waguard/callers{{- end }}
{{- define "waguard.tlsDir" -}}/etc/waguard/tls{{- end }}
{{- define "waguard.auditSigningDir" -}}/etc/waguard/audit-signing{{- end }}
{{- define "waguard.identityKeysDir" -}}/etc/waguard/identity-keys{{- end }}
{{- define "waguard.gitRoot" -}}/var/run/waguard/git{{- end }}
{{- /* The drift scan's own audit claim (scan.cronJob.auditClaim), never the gateway's audit volume. */}}
{{- define "waguard.scanAuditDir" -}}/var/lib/waguard-scan{{- end }}

{{- define "waguard.policyDir" -}}
{{- $source := .Values.policies.source }}
{{- if eq $source "gitSync" }}
{{- $path := trimAll "/" .Values.policies.gitSync.path }}
{{- if $path }}
{{- printf "%s/current/%s" (include "waguard.gitRoot" .) $path }}
{{- else }}
{{- printf "%s/current" (include "waguard.gitRoot" .) }}
{{- end }}
{{- else }}
{{- /* configMap mounts over the image's default policy folder; image uses it as is. */}}
{{- printf "%s/policies" (include "waguard.configDir" .) }}
{{- end }}
{{- end }}

{{/*
Policy files for source=configMap: {relative path: content}. files/policies is a symlink to the
repository's policies/ (Helm follows it, and `helm package` stores the files), so the chart's
default policy is always the repository's; *_test.rego files are left out.
*/}}
{{- define "waguard.policyFiles" -}}
{{- $files := dict }}
{{- if .Values.policies.files }}
{{- $files = .Values.policies.files }}
{{- else }}
{{- range $path, $_ := .Files.Glob "files/policies/**" }}
{{- if not (hasSuffix "_test.rego" $path) }}
{{- $_ := set $files (trimPrefix "files/policies/" $path) ($.Files.Get $path) }}
{{- end }}
{{- end }}
{{- end }}
{{- if not $files }}
{{- fail "policies.source=configMap: no policy files; set policies.files (files/policies links to the repository's policies/ and is empty outside a checkout)" }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/* ConfigMap keys cannot hold '/': folders are encoded as "__" and restored by the volume's items. */}}
{{- define "waguard.policyKey" -}}
{{- . | replace "/" "__" }}
{{- end }}

{{/* The audit log's name (checkpoint origin): config.audit.log_name when set, else audit.signing.logName. */}}
{{- define "waguard.auditLogName" -}}
{{- $audit := dig "audit" dict (default (dict) .Values.config) }}
{{- $name := "" }}
{{- if and (kindIs "map" $audit) (hasKey $audit "log_name") (not (kindIs "invalid" (get $audit "log_name"))) }}
{{- $name = get $audit "log_name" }}
{{- else }}
{{- $name = default "waguard" .Values.audit.signing.logName }}
{{- end }}
{{- $name }}
{{- end }}

{{- define "waguard.terminationGracePeriodSeconds" -}}
{{- $grace := ceil (dig "server" "shutdown_grace" 20 (default (dict) .Values.config)) | int }}
{{- $sleep := int .Values.lifecycle.preStopSleepSeconds }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $sleep $grace 5 }}
{{- else }}
{{- $t := int .Values.terminationGracePeriodSeconds }}
{{- if le $t (add $sleep $grace) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than lifecycle.preStopSleepSeconds + config.server.shutdown_grace (%d): the pod would be killed while draining" $t (add $sleep $grace)) }}
{{- end }}
{{- $t }}
{{- end }}
{{- end }}

{{/*
waguard.toml from .Values.config plus the keys the chart owns. Tables are rendered in name order,
keys in name order; nested maps become inline tables.
*/}}
{{- define "waguard.config" -}}
{{- $owned := dict
  "server" (list "listen" "admin_listen" "tls_cert_file" "tls_key_file")
  "policy" (list "dir")
  "callers" (list "file")
  "audit" (list "file" "signing_key_file")
  "identity" (list "key_files") }}
{{- $cfg := deepCopy (default (dict) .Values.config) }}
{{- range $table, $keys := $owned }}
{{- $t := get $cfg $table }}
{{- if and $t (not (kindIs "map" $t)) }}
{{- fail (printf "config.%s must be a table (map)" $table) }}
{{- end }}
{{- range $keys }}
{{- if and $t (hasKey $t .) }}
{{- if and (eq $table "audit") (eq . "signing_key_file") }}
{{- fail "config.audit.signing_key_file is set by the chart from the pod's layout; name the Secret holding the signer key in audit.signing.existingSecret instead" }}
{{- end }}
{{- if and (eq $table "identity") (eq . "key_files") }}
{{- fail "config.identity.key_files is set by the chart from the pod's layout; name the Secret holding the session keys in identity.keys.existingSecret and its keys, the signing one first, in identity.keys.items instead" }}
{{- end }}
{{- fail (printf "config.%s.%s is set by the chart from the pod's layout; remove it from values" $table .) }}
{{- end }}
{{- end }}
{{- if not $t }}
{{- $_ := set $cfg $table dict }}
{{- end }}
{{- end }}
{{- $server := get $cfg "server" }}
{{- $_ := set $server "listen" (printf "%s:%d" .Values.listenAddress (int .Values.containerPorts.api)) }}
{{- $_ := set $server "admin_listen" (printf "%s:%d" .Values.listenAddress (int .Values.containerPorts.admin)) }}
{{- if .Values.tls.enabled }}
{{- $_ := set $server "tls_cert_file" (printf "%s/tls.crt" (include "waguard.tlsDir" .)) }}
{{- $_ := set $server "tls_key_file" (printf "%s/tls.key" (include "waguard.tlsDir" .)) }}
{{- end }}
{{- $_ := set (get $cfg "policy") "dir" (include "waguard.policyDir" .) }}
{{- $_ := set (get $cfg "callers") "file" (printf "%s/%s" (include "waguard.callersDir" .) .Values.callers.key) }}
{{- $audit := get $cfg "audit" }}
{{- $_ := set $audit "file" (printf "%s/audit.jsonl" .Values.audit.mountPath) }}
{{- $signing := .Values.audit.signing }}
{{- if $signing.existingSecret }}
{{- $_ := set $audit "signing_key_file" (printf "%s/%s" (include "waguard.auditSigningDir" .) $signing.key) }}
{{- end }}
{{- $_ := set $audit "log_name" (include "waguard.auditLogName" .) }}
{{- $identity := get $cfg "identity" }}
{{- $identityKeys := .Values.identity.keys }}
{{- if $identityKeys.existingSecret }}
{{- if not $identityKeys.items }}
{{- fail "identity.keys.items: name at least one key of the Secret identity.keys.existingSecret (the first signs sessions)" }}
{{- end }}
{{- $files := list }}
{{- range $identityKeys.items }}
{{- $files = append $files (printf "%s/%s" (include "waguard.identityKeysDir" $) .) }}
{{- end }}
{{- $_ := set $identity "key_files" $files }}
{{- end }}
{{- if eq (toString (get $identity "enabled")) "true" }}
{{- if not $identityKeys.existingSecret }}
{{- fail "config.identity.enabled needs the session keys: create a Secret of key files (kubectl create secret generic waguard-identity-keys --from-file=key-1=<(head -c 32 /dev/urandom)) and name it in identity.keys.existingSecret" }}
{{- end }}
{{- if not (get $identity "server_id") }}
{{- fail "config.identity.enabled needs config.identity.server_id: what callers sign into the x-waguard-server-id header, e.g. the gateway's host name" }}
{{- end }}
{{- end }}
{{- if not $identity }}
{{- $_ := unset $cfg "identity" }}
{{- end }}
{{- "# Rendered by the waguard Helm chart from .Values.config; edit values, not this file.\n" }}
{{- range $table := keys $cfg | sortAlpha }}
{{- $entries := get $cfg $table }}
{{- if not (kindIs "map" $entries) }}
{{- fail (printf "config.%s must be a table (map), got %s" $table (kindOf $entries)) }}
{{- end }}
{{- printf "\n[%s]\n" (include "waguard.tomlKey" $table) }}
{{- range $key := keys $entries | sortAlpha }}
{{- $v := get $entries $key }}
{{- if not (kindIs "invalid" $v) }}
{{- printf "%s = %s\n" (include "waguard.tomlKey" $key) (include "waguard.tomlValue" $v) }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.extraConfig }}
{{- printf "\n%s\n" (trim .) }}
{{- end }}
{{- end }}

{{- define "waguard.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{/* One TOML value. Helm reads every number as a float; whole numbers are written as integers. */}}
{{- define "waguard.tomlValue" -}}
{{- if kindIs "string" . }}
{{- toJson . }}
{{- else if kindIs "bool" . }}
{{- . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}
{{- if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) }}
{{- . }}
{{- else if kindIs "slice" . }}
{{- $items := list }}
{{- range . }}
{{- $items = append $items (include "waguard.tomlValue" .) }}
{{- end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else if kindIs "map" . }}
{{- $map := . }}
{{- $items := list }}
{{- range $k := keys $map | sortAlpha }}
{{- $v := get $map $k }}
{{- if not (kindIs "invalid" $v) }}
{{- $items = append $items (printf "%s = %s" (include "waguard.tomlKey" $k) (include "waguard.tomlValue" $v)) }}
{{- end }}
{{- end }}
{{- printf "{ %s }" (join ", " $items) }}
{{- else }}
{{- fail (printf "config: cannot write a %s value to TOML" (kindOf .)) }}
{{- end }}
{{- end }}

{{/*
A git-sync container (init with oneTime, else the sidecar). It publishes each checkout by
swapping the relative symlink <root>/current, so readers never see a half-written tree.
*/}}
{{- define "waguard.gitSyncContainer" -}}
{{- $root := .root }}
{{- $g := $root.Values.policies.gitSync -}}
image: {{ printf "%s:%s" $g.image.repository $g.image.tag }}
imagePullPolicy: {{ $g.image.pullPolicy }}
args:
  - --repo={{ $g.repo }}
  - --ref={{ $g.ref }}
  - --root={{ include "waguard.gitRoot" $root }}
  - --link=current
  - --depth={{ $g.depth }}
  - --period={{ $g.period }}
  - --max-failures={{ $g.maxFailures }}
  {{- if .oneTime }}
  - --one-time
  {{- end }}
  {{- if eq $g.auth.type "ssh" }}
  - --ssh-key-file=/etc/git-secret/ssh
  - --ssh-known-hosts-file=/etc/git-secret/known_hosts
  {{- else if eq $g.auth.type "password" }}
  - --password-file=/etc/git-secret/password
  {{- else if ne $g.auth.type "none" }}
  {{- fail (printf "policies.gitSync.auth.type must be none, ssh or password, not %q" $g.auth.type) }}
  {{- end }}
env:
  # git writes its config under HOME; the root filesystem is read-only.
  - name: HOME
    value: /tmp
  {{- if eq $g.auth.type "password" }}
  - name: GITSYNC_USERNAME
    valueFrom:
      secretKeyRef:
        name: {{ $g.auth.existingSecret }}
        key: username
  {{- end }}
resources:
  {{- toYaml $g.resources | nindent 2 }}
securityContext:
  {{- merge (dict "runAsUser" $g.runAsUser) (deepCopy $root.Values.securityContext) | toYaml | nindent 2 }}
volumeMounts:
  - name: git
    mountPath: {{ include "waguard.gitRoot" $root }}
  - name: git-tmp
    mountPath: /tmp
  {{- if ne $g.auth.type "none" }}
  - name: git-secret
    mountPath: /etc/git-secret
    readOnly: true
  {{- end }}
{{- end }}

{{/*
The policy as a container sees it (read-only), and the pod volumes behind it: shared by the
gateway Deployment and the drift-scan CronJob. Empty for policies.source=image.
*/}}
{{- define "waguard.policyMounts" -}}
{{- if eq .Values.policies.source "configMap" }}
- name: policies
  mountPath: {{ include "waguard.policyDir" . }}
  readOnly: true
{{- else if eq .Values.policies.source "gitSync" }}
- name: git
  mountPath: {{ include "waguard.gitRoot" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "waguard.policyVolumes" -}}
{{- $gitSync := .Values.policies.gitSync }}
{{- if eq .Values.policies.source "configMap" }}
- name: policies
  configMap:
    name: {{ include "waguard.fullname" . }}-policies
    # Restores the policy's folders (ConfigMap keys cannot hold '/').
    items:
      {{- range $path, $_ := include "waguard.policyFiles" . | fromJson }}
      - key: {{ include "waguard.policyKey" $path }}
        path: {{ $path }}
      {{- end }}
{{- else if eq .Values.policies.source "gitSync" }}
- name: git
  emptyDir:
    sizeLimit: 256Mi
- name: git-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if ne $gitSync.auth.type "none" }}
- name: git-secret
  secret:
    secretName: {{ $gitSync.auth.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}
