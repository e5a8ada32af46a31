{{/*
Helpers read only .Values, .Release and .Chart. A parent chart that depends on this one calls the
public ones (container or nativeSidecar, volumes, podAnnotations, terminationGracePeriodSeconds) with the
subchart's own context, so names and values match what the subchart rendered:
  {{- include "callback-sidecar.container" (index .Subcharts "callback-sidecar") | nindent 8 }}
*/}}

{{- define "callback-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "callback-sidecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "callback-sidecar.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "callback-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "callback-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "callback-sidecar.labels" -}}
{{ include "callback-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | default "unknown" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | default "Helm" }}
app.kubernetes.io/component: callback-sidecar
{{- end -}}

{{/* Pods the Service, ServiceMonitor and NetworkPolicy select: ours, or the host app's. */}}
{{- define "callback-sidecar.podSelector" -}}
{{- if .Values.podSelectorOverride -}}
{{ toYaml .Values.podSelectorOverride }}
{{- else -}}
{{ include "callback-sidecar.selectorLabels" . }}
{{- end -}}
{{- end -}}

{{- define "callback-sidecar.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-secrets" (include "callback-sidecar.fullname" .)) -}}
{{- end -}}

{{- define "callback-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "callback-sidecar.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "callback-sidecar.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* CALLBACK_SECRET_<TENANT>: env names are upper snake, whatever the tenant id looks like. */}}
{{- define "callback-sidecar.secretEnvName" -}}
{{- printf "CALLBACK_SECRET_%s" (regexReplaceAll "[^A-Za-z0-9]+" . "_" | upper) -}}
{{- end -}}

{{/*
One entry per env var a tenant's secrets need: list of dicts {env, tenant, value}. value is only
known for the chart-created Secret. Fails on values that would render a broken deployment.
*/}}
{{- define "callback-sidecar.secretEntries" -}}
{{- $entries := list -}}
{{- $seen := dict -}}
{{- range .Values.tenants -}}
{{- $tenant := index . "tenant-id" -}}
{{- $env := include "callback-sidecar.secretEnvName" $tenant -}}
{{- if hasKey $seen $env -}}
{{- fail (printf "tenants: %q and %q both map to env %s; rename one" (get $seen $env) $tenant $env) -}}
{{- end -}}
{{- $_ := set $seen $env $tenant -}}
{{- $values := list -}}
{{- $extra := int (index . "additional-secret-count" | default 0) -}}
{{- if not $.Values.secret.existingSecret -}}
{{- $given := index $.Values.secret.hmac $tenant -}}
{{- if not $given -}}
{{- fail (printf "secret.hmac.%s is required: every tenant signs with a secret (or set secret.existingSecret)" $tenant) -}}
{{- end -}}
{{- $values = kindIs "slice" $given | ternary $given (list $given) -}}
{{- $extra = sub (len $values) 1 | int -}}
{{- end -}}
{{- if and (gt $extra 0) (not (has (index . "signing-scheme" | default "pyfly") (list "standard-webhooks" "pyfly-timestamped"))) -}}
{{- fail (printf "tenant %s: secret rotation (additional secrets) needs signing-scheme pyfly-timestamped or standard-webhooks" $tenant) -}}
{{- end -}}
{{- $entries = append $entries (dict "env" $env "tenant" $tenant "value" (first $values | default "")) -}}
{{- range $i, $_ := until $extra -}}
{{- $value := "" -}}
{{- if not $.Values.secret.existingSecret }}{{ $value = index $values (add1 $i) }}{{ end -}}
{{- $entries = append $entries (dict "env" (printf "%s_ADDITIONAL_%d" $env (add1 $i)) "tenant" $tenant "value" $value) -}}
{{- end -}}
{{- end -}}
{{- range $tenant, $_ := .Values.secret.hmac -}}
{{- if not (hasKey $seen (include "callback-sidecar.secretEnvName" $tenant)) -}}
{{- fail (printf "secret.hmac.%s has no tenant with that tenant-id" $tenant) -}}
{{- end -}}
{{- end -}}
{{- if include "callback-sidecar.saslEnabled" . -}}
{{- if and (not .Values.secret.existingSecret) (not .Values.secret.kafkaSaslPassword) -}}
{{- fail "secret.kafkaSaslPassword is required when config.kafka.sasl.mechanism is not none" -}}
{{- end -}}
{{- $entries = append $entries (dict "env" "CALLBACK_KAFKA_SASL_PASSWORD" "value" .Values.secret.kafkaSaslPassword) -}}
{{- end -}}
{{- if .Values.executionsEndpoint.enabled -}}
{{- if and (not .Values.secret.existingSecret) (not .Values.secret.executionsToken) -}}
{{- fail "secret.executionsToken is required when executionsEndpoint.enabled is true (or set secret.existingSecret with key CALLBACK_EXECUTIONS_TOKEN)" -}}
{{- end -}}
{{- $entries = append $entries (dict "env" "CALLBACK_EXECUTIONS_TOKEN" "value" .Values.secret.executionsToken) -}}
{{- end -}}
{{- /* Handoff keys (pyfly.callbacks.handoff.keys): CALLBACK_HANDOFF_KEY_<i>, in order, the first signs. */ -}}
{{- $handoffKeys := .Values.secret.handoffKeys | default list -}}
{{- $handoffCount := int (.Values.secret.handoffKeyCount | default 0) -}}
{{- if .Values.secret.existingSecret -}}
{{- if $handoffKeys -}}
{{- fail "secret.handoffKeys is for the chart-created Secret: with secret.existingSecret, put CALLBACK_HANDOFF_KEY_0.. in that Secret and set secret.handoffKeyCount" -}}
{{- end -}}
{{- else -}}
{{- if $handoffCount -}}
{{- fail "secret.handoffKeyCount is for secret.existingSecret: list the keys themselves in secret.handoffKeys" -}}
{{- end -}}
{{- range $i, $key := $handoffKeys -}}
{{- if lt (len $key) 32 -}}
{{- fail (printf "secret.handoffKeys[%d] is shorter than 32 bytes: use 32 random bytes or more (openssl rand -base64 32)" $i) -}}
{{- end -}}
{{- end -}}
{{- $handoffCount = len $handoffKeys -}}
{{- end -}}
{{- range $i, $_ := until $handoffCount -}}
{{- $value := "" -}}
{{- if not $.Values.secret.existingSecret }}{{ $value = index $handoffKeys $i }}{{ end -}}
{{- $entries = append $entries (dict "env" (printf "CALLBACK_HANDOFF_KEY_%d" $i) "value" $value) -}}
{{- end -}}
{{- toJson $entries -}}
{{- end -}}

{{/*
Values the schema cannot judge alone; included by the application.yml, so every render checks them.
*/}}
{{- define "callback-sidecar.checkValues" -}}
{{- $proxy := .Values.egressProxy -}}
{{- if and $proxy.url $proxy.existingSecret -}}
{{- fail "egressProxy: set url or existingSecret, not both" -}}
{{- end -}}
{{- if contains "@" $proxy.url -}}
{{- fail "egressProxy.url carries credentials, which would sit in the pod spec: put the whole URL in a Secret and set egressProxy.existingSecret (and secretKey)" -}}
{{- end -}}
{{- $tracing := .Values.tracing -}}
{{- if contains "@" $tracing.otlpEndpoint -}}
{{- fail "tracing.otlpEndpoint carries credentials, which would sit in the pod spec: put them in a Secret as OTEL_EXPORTER_OTLP_HEADERS and set tracing.headersSecret" -}}
{{- end -}}
{{- if and (ne (toString $tracing.samplerArg) "") (not (has $tracing.sampler (list "traceidratio" "parentbased_traceidratio"))) -}}
{{- fail "tracing.samplerArg is the fraction of the traceidratio samplers: set tracing.sampler to traceidratio or parentbased_traceidratio" -}}
{{- end -}}
{{- $tls := .Values.receiverTls -}}
{{- if $tls.secretName -}}
{{- if not (or $tls.clientCertificate $tls.ca) -}}
{{- fail "receiverTls: with secretName, set clientCertificate (tls.crt, tls.key) or ca (ca.crt) or both" -}}
{{- end -}}
{{- range list "/etc/callback-sidecar" "/tmp" -}}
{{- if or (eq $tls.mountPath .) (hasPrefix (printf "%s/" .) $tls.mountPath) (hasPrefix (printf "%s/" $tls.mountPath) .) -}}
{{- fail (printf "receiverTls.mountPath %s overlaps %s, which the chart mounts already: pick another directory" $tls.mountPath .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
pyfly.callbacks.http.tls from receiverTls: the mounted Secret's files and the minimum version, as
JSON (an empty object when there is nothing to set).
*/}}
{{- define "callback-sidecar.receiverTls" -}}
{{- $v := .Values.receiverTls -}}
{{- $tls := dict -}}
{{- if $v.secretName -}}
{{- if $v.clientCertificate -}}
{{- $_ := set $tls "client-cert-file" (printf "%s/tls.crt" $v.mountPath) -}}
{{- $_ := set $tls "client-key-file" (printf "%s/tls.key" $v.mountPath) -}}
{{- end -}}
{{- if $v.ca -}}
{{- $_ := set $tls "ca-file" (printf "%s/ca.crt" $v.mountPath) -}}
{{- end -}}
{{- end -}}
{{- with $v.minVersion -}}
{{- $_ := set $tls "min-version" . -}}
{{- end -}}
{{- toJson $tls -}}
{{- end -}}

{{/* HTTPS_PROXY, HTTP_PROXY (one URL, from the values or from a Secret) and NO_PROXY. */}}
{{- define "callback-sidecar.proxyEnv" -}}
{{- $proxy := .Values.egressProxy -}}
{{- range list "HTTPS_PROXY" "HTTP_PROXY" }}
{{- if $proxy.existingSecret }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $proxy.existingSecret }}
      key: {{ $proxy.secretKey }}
{{- else if $proxy.url }}
- name: {{ . }}
  value: {{ $proxy.url | quote }}
{{- end }}
{{- end }}
{{- with $proxy.noProxy }}
- name: NO_PROXY
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{/*
The OTEL_* variables of tracing, only when it is on. OTEL_RESOURCE_ATTRIBUTES names the pod
(Kubernetes expands $(VAR) from the variables defined before it) and adds tracing.resourceAttributes,
percent-encoded as the variable's format requires ($ doubled: Kubernetes would expand $(...)).
The headers, which may carry a token, come only from a Secret.
*/}}
{{- define "callback-sidecar.tracingEnv" -}}
{{- $t := .Values.tracing -}}
{{- if $t.enabled }}
- name: CALLBACK_OTEL_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: CALLBACK_OTEL_POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with $t.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $t.protocol | quote }}
{{- with $t.serviceName }}
- name: OTEL_SERVICE_NAME
  value: {{ . | quote }}
{{- end }}
{{- $attributes := list "k8s.namespace.name=$(CALLBACK_OTEL_POD_NAMESPACE)" "k8s.pod.name=$(CALLBACK_OTEL_POD_NAME)" "k8s.container.name=callback-sidecar" -}}
{{- range $key, $value := $t.resourceAttributes -}}
{{- $encode := list (list "%" "%25") (list "," "%2C") (list "=" "%3D") (list "$" "$$") -}}
{{- $k := $key -}}
{{- $v := toString $value -}}
{{- range $encode -}}
{{- $k = replace (index . 0) (index . 1) $k -}}
{{- $v = replace (index . 0) (index . 1) $v -}}
{{- end -}}
{{- $attributes = append $attributes (printf "%s=%s" $k $v) -}}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- with $t.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- if ne (toString $t.samplerArg) "" }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ toString $t.samplerArg | quote }}
{{- end }}
{{- with $t.headersSecret.name }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $t.headersSecret.key }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "callback-sidecar.saslEnabled" -}}
{{- $sasl := dig "kafka" "sasl" "mechanism" "none" .Values.config -}}
{{- if ne $sasl "none" }}true{{ end -}}
{{- end -}}

{{/*
The sidecar's application.yml. Secrets are ${ENV} placeholders the sidecar expands at start, so
the ConfigMap never holds one.
*/}}
{{- define "callback-sidecar.applicationYaml" -}}
{{- include "callback-sidecar.checkValues" . -}}
{{- $callbacks := deepCopy .Values.config -}}
{{- $_ := set $callbacks "shutdown-grace" (printf "%ds" (int .Values.shutdownGraceSeconds)) -}}
{{- $_ = set $callbacks "server" (dict "port" (int .Values.adminPort) "host" "0.0.0.0") -}}
{{- if .Values.executionsEndpoint.enabled -}}
{{- $executions := dict "enabled" true "token" "${CALLBACK_EXECUTIONS_TOKEN}" "include-payloads" .Values.executionsEndpoint.includePayloads -}}
{{- $_ = set (get $callbacks "server") "executions" $executions -}}
{{- end -}}
{{- $kafka := get $callbacks "kafka" | default dict -}}
{{- if hasKey $kafka "topic-pattern" -}}
{{- $_ = unset $kafka "topics" -}}
{{- end -}}
{{- if include "callback-sidecar.saslEnabled" . -}}
{{- $_ = set (get $kafka "sasl") "password" "${CALLBACK_KAFKA_SASL_PASSWORD}" -}}
{{- end -}}
{{- /* An empty handoff topic means the sidecar's default, named after the group id. */ -}}
{{- range $section := list "retry" "dead-letter" -}}
{{- $handoff := get $callbacks $section | default dict -}}
{{- if not (get $handoff "topic") -}}
{{- $_ := unset $handoff "topic" -}}
{{- end -}}
{{- end -}}
{{- /* An empty retry schedule means none: tenants keep their own or pyfly's rule. */ -}}
{{- $retry := get $callbacks "retry" | default dict -}}
{{- if not (get $retry "schedule") -}}
{{- $_ := unset $retry "schedule" -}}
{{- end -}}
{{- /* Receiver TLS: the mounted Secret's files (receiverTls). */ -}}
{{- $tls := include "callback-sidecar.receiverTls" . | fromJson -}}
{{- if $tls -}}
{{- $http := get $callbacks "http" | default dict -}}
{{- $_ = set $http "tls" $tls -}}
{{- $_ = set $callbacks "http" $http -}}
{{- end -}}
{{- /* Tracing: its own values (the exporter settings are env vars), never config.tracing. */ -}}
{{- if .Values.tracing.enabled -}}
{{- $_ = set $callbacks "tracing" (dict "enabled" true "send-trace-context" .Values.tracing.sendTraceContext) -}}
{{- end -}}
{{- $configs := list -}}
{{- $entries := include "callback-sidecar.secretEntries" . | fromJsonArray -}}
{{- range .Values.tenants -}}
{{- $tenant := omit . "additional-secret-count" -}}
{{- $env := include "callback-sidecar.secretEnvName" (index . "tenant-id") -}}
{{- $_ = set $tenant "secret" (printf "${%s}" $env) -}}
{{- $additional := list -}}
{{- range $entries -}}
{{- if and (eq (.tenant | default "") (index $tenant "tenant-id")) (ne .env $env) -}}
{{- $additional = append $additional (printf "${%s}" .env) -}}
{{- end -}}
{{- end -}}
{{- if $additional -}}
{{- $_ = set $tenant "additional-secrets" $additional -}}
{{- end -}}
{{- $configs = append $configs $tenant -}}
{{- end -}}
{{- $_ = set $callbacks "configs" $configs -}}
{{- $handoffKeys := list -}}
{{- range $entries -}}
{{- if hasPrefix "CALLBACK_HANDOFF_KEY_" .env -}}
{{- $handoffKeys = append $handoffKeys (printf "${%s}" .env) -}}
{{- end -}}
{{- end -}}
{{- if $handoffKeys -}}
{{- $_ = set $callbacks "handoff" (dict "keys" $handoffKeys) -}}
{{- end -}}
{{- dict "pyfly" (dict "callbacks" $callbacks) | toYaml -}}
{{- end -}}

{{/* Pod annotations that roll the pods when the config or the chart-created Secret changes. */}}
{{- define "callback-sidecar.podAnnotations" -}}
checksum/callback-sidecar-config: {{ include "callback-sidecar.applicationYaml" . | sha256sum }}
checksum/callback-sidecar-secret: {{ include "callback-sidecar.secretEntries" . | sha256sum }}
{{- end -}}

{{- define "callback-sidecar.terminationGracePeriodSeconds" -}}
{{- add .Values.shutdownGraceSeconds .Values.terminationGraceExtraSeconds -}}
{{- end -}}

{{/* The container, for this chart's Deployment and for other charts' pod specs (containers). */}}
{{- define "callback-sidecar.container" -}}
- name: callback-sidecar
  image: {{ include "callback-sidecar.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["run"]
  ports:
    - name: cb-admin
      containerPort: {{ .Values.adminPort }}
      protocol: TCP
  env:
    - name: PYFLY_CONFIG_FILE
      value: /etc/callback-sidecar/application.yml
    {{- range include "callback-sidecar.secretEntries" . | fromJsonArray }}
    - name: {{ .env }}
      valueFrom:
        secretKeyRef:
          name: {{ include "callback-sidecar.secretName" $ }}
          key: {{ .env }}
    {{- end }}
    {{- with include "callback-sidecar.proxyEnv" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with include "callback-sidecar.tracingEnv" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .Values.probes.liveness.enabled }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: cb-admin
    {{- toYaml (omit .Values.probes.liveness "enabled") | nindent 4 }}
  {{- end }}
  {{- if .Values.probes.readiness.enabled }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: cb-admin
    {{- toYaml (omit .Values.probes.readiness "enabled") | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: callback-sidecar-config
      mountPath: /etc/callback-sidecar
      readOnly: true
    - name: callback-sidecar-tmp
      mountPath: /tmp
    {{- if .Values.receiverTls.secretName }}
    # The whole Secret, no subPath: Kubernetes updates it in place and the sidecar reloads it.
    - name: callback-sidecar-receiver-tls
      mountPath: {{ .Values.receiverTls.mountPath }}
      readOnly: true
    {{- end }}
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
The same container as a Kubernetes native sidecar (1.29+), for your pod spec's initContainers: an
init container with restartPolicy Always starts before the app's containers, keeps running beside
them (restarted if it exits, its probes kept) and is stopped after them; it does not hold a Job's
pod open once the Job's containers have finished. Refuses a cluster older than 1.29, where the
field is dropped or refused and the pod would never get past its init containers.
*/}}
{{- define "callback-sidecar.nativeSidecar" -}}
{{- with .Capabilities -}}
{{- if semverCompare "<1.29.0-0" .KubeVersion.Version -}}
{{- fail (printf "callback-sidecar.nativeSidecar needs Kubernetes 1.29 or later (native sidecars: initContainers with restartPolicy Always); this cluster is %s: use the callback-sidecar.container template in containers instead" .KubeVersion.Version) -}}
{{- end -}}
{{- end -}}
{{ include "callback-sidecar.container" . }}
  # Native sidecar: starts before the app's containers, stops after them.
  restartPolicy: Always
{{- end -}}

{{/* The volumes the container mounts; add them to the same pod spec. */}}
{{- define "callback-sidecar.volumes" -}}
- name: callback-sidecar-config
  configMap:
    name: {{ include "callback-sidecar.fullname" . }}
- name: callback-sidecar-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- with .Values.receiverTls.secretName }}
- name: callback-sidecar-receiver-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}
