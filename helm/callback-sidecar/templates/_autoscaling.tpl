{{/*
Lag autoscaling with KEDA (autoscaling.*): the Kafka scaler's triggers and their authentication,
derived from the same values the sidecar's application.yml is rendered from, so the triggers watch
the topics and consumer groups the sidecar actually uses.
*/}}

{{/*
A duration of the sidecar's config (a number of seconds, or "500ms", "10s", "1m", "2h"), in whole
milliseconds, as the sidecar reads it (src/config/durations.ts).
*/}}
{{- define "callback-sidecar.durationMs" -}}
{{- $ms := 0.0 -}}
{{- if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}
{{- $ms = mulf . 1000 -}}
{{- else -}}
{{- $text := lower (trim (toString .)) -}}
{{- $re := "^([0-9]+(?:\\.[0-9]+)?)\\s*(ms|s|m|h)?$" -}}
{{- if not (regexMatch $re $text) -}}
{{- fail (printf "%v is not a duration (a number of seconds, or a string like 500ms, 10s, 1m, 2h)" .) -}}
{{- end -}}
{{- $unit := regexReplaceAll $re $text "${2}" | default "s" -}}
{{- $ms = mulf (float64 (regexReplaceAll $re $text "${1}")) (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) -}}
{{- end -}}
{{- if ne (floor $ms) $ms -}}
{{- fail (printf "retry tier %v is not a whole number of milliseconds: the chart cannot name its topic as the sidecar would" .) -}}
{{- end -}}
{{- printf "%d" (int64 $ms) -}}
{{- end -}}

{{/* A tier's name in its topic, as the sidecar spells it (src/domain/retry-tiers.ts tierLabel). */}}
{{- define "callback-sidecar.tierLabel" -}}
{{- $ms := int64 . -}}
{{- if eq (mod $ms 3600000) 0 -}}{{ div $ms 3600000 }}h
{{- else if eq (mod $ms 60000) 0 -}}{{ div $ms 60000 }}m
{{- else if eq (mod $ms 1000) 0 -}}{{ div $ms 1000 }}s
{{- else -}}{{ $ms }}ms
{{- end -}}
{{- end -}}

{{/*
The topics and consumer groups of the sidecar (src/app/sidecar.ts), as JSON:
  group, events (topic names; empty with topic-pattern), pattern (bool),
  retryGroup ("<group-id>.retry"), retryTopics (the retry topic, then its tiers "<retry topic>.<tier>"
  in ascending order, duplicates dropped).
*/}}
{{- define "callback-sidecar.kafkaTopology" -}}
{{- $kafka := .Values.config.kafka | default dict -}}
{{- $group := get $kafka "group-id" | default "callback-sidecar" -}}
{{- $retry := .Values.config.retry | default dict -}}
{{- $retryTopic := get $retry "topic" | default (printf "%s.retry" $group) -}}
{{- $tiers := hasKey $retry "tiers" | ternary (get $retry "tiers") (list "10s" "1m" "10m" "1h") | default list -}}
{{- $byDelay := dict -}}
{{- range $tiers -}}
{{- $ms := include "callback-sidecar.durationMs" . -}}
{{- $_ := set $byDelay (printf "%020d" (int64 $ms)) (printf "%s.%s" $retryTopic (include "callback-sidecar.tierLabel" $ms)) -}}
{{- end -}}
{{- $retryTopics := list $retryTopic -}}
{{- range $_, $topic := $byDelay -}}
{{- $retryTopics = append $retryTopics $topic -}}
{{- end -}}
{{- $pattern := hasKey $kafka "topic-pattern" -}}
{{- $events := $pattern | ternary list (get $kafka "topics" | default list) -}}
{{- dict "group" $group "events" $events "pattern" $pattern "retryGroup" (printf "%s.retry" $group) "retryTopics" $retryTopics | toJson -}}
{{- end -}}

{{/*
Where KEDA can read a file the container reads: the Secret or ConfigMap key behind the path, found
through extraVolumeMounts/extraVolumes (and the receiverTls mount), as JSON {kind, name, key};
{} when no such volume holds it. Called with (dict "root" $ "path" "/etc/kafka-tls/ca.crt").
*/}}
{{- define "callback-sidecar.fileSource" -}}
{{- $path := .path -}}
{{- $v := .root.Values -}}
{{- $mounts := concat (list) ($v.extraVolumeMounts | default list) -}}
{{- $volumes := concat (list) ($v.extraVolumes | default list) -}}
{{- if $v.receiverTls.secretName -}}
{{- $mounts = append $mounts (dict "name" "callback-sidecar-receiver-tls" "mountPath" $v.receiverTls.mountPath) -}}
{{- $volumes = append $volumes (dict "name" "callback-sidecar-receiver-tls" "secret" (dict "secretName" $v.receiverTls.secretName)) -}}
{{- end -}}
{{- /* The deepest mount holding the path wins, as in the container. */ -}}
{{- $best := dict -}}
{{- range $mount := $mounts -}}
{{- $mountPath := trimSuffix "/" $mount.mountPath -}}
{{- $rel := "" -}}
{{- if $mount.subPath -}}
{{- if eq $path $mountPath }}{{ $rel = $mount.subPath }}{{ end -}}
{{- else if hasPrefix (printf "%s/" $mountPath) $path -}}
{{- $rel = trimPrefix (printf "%s/" $mountPath) $path -}}
{{- end -}}
{{- if and $rel (gt (len $mountPath) (int (get $best "depth" | default -1))) -}}
{{- $best = dict "depth" (len $mountPath) "volume" $mount.name "rel" $rel -}}
{{- end -}}
{{- end -}}
{{- $found := dict -}}
{{- if $best -}}
{{- range $volumes -}}
{{- if eq .name $best.volume -}}
{{- $kind := "" -}}
{{- $source := dict -}}
{{- if .secret -}}
{{- $kind = "secret" -}}
{{- $source = dict "name" .secret.secretName "items" .secret.items -}}
{{- else if .configMap -}}
{{- $kind = "configMap" -}}
{{- $source = dict "name" .configMap.name "items" .configMap.items -}}
{{- end -}}
{{- if and $kind $source.name -}}
{{- $key := "" -}}
{{- if $source.items -}}
{{- range $source.items -}}
{{- if eq .path $best.rel }}{{ $key = .key }}{{ end -}}
{{- end -}}
{{- else if not (contains "/" $best.rel) -}}
{{- $key = $best.rel -}}
{{- end -}}
{{- if $key -}}
{{- $found = dict "kind" $kind "name" $source.name "key" $key -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $found -}}
{{- end -}}

{{/*
The Kafka connection as the scaler needs it, as JSON:
  metadata: trigger metadata every trigger shares (bootstrapServers, sasl, tls, unsafeSsl);
  secretTargetRef, configMapTargetRef: the TriggerAuthentication's parameters;
  configMapData: what the chart's <fullname>-keda ConfigMap holds (the SASL username);
  authenticationRef: what the triggers reference ({} when nothing to authenticate with).
*/}}
{{- define "callback-sidecar.kedaConnection" -}}
{{- $kafka := .Values.config.kafka | default dict -}}
{{- $ssl := get $kafka "ssl" | default dict -}}
{{- $sasl := get $kafka "sasl" | default dict -}}
{{- $ownRef := .Values.autoscaling.authenticationRef -}}
{{- $metadata := dict "bootstrapServers" (join "," (get $kafka "brokers" | default (list "localhost:9092"))) -}}
{{- $secretRefs := list -}}
{{- $configMapRefs := list -}}
{{- $configMapData := dict -}}
{{- if include "callback-sidecar.saslEnabled" . -}}
{{- $mechanisms := dict "plain" "plaintext" "scram-sha-256" "scram_sha256" "scram-sha-512" "scram_sha512" -}}
{{- $_ := set $metadata "sasl" (get $mechanisms $sasl.mechanism) -}}
{{- if not $ownRef.name -}}
{{- $username := toString (get $sasl "username" | default "") -}}
{{- if not $username -}}
{{- fail "autoscaling: config.kafka.sasl.username is required with SASL, for KEDA's trigger authentication as for the sidecar" -}}
{{- end -}}
{{- if contains "${" $username -}}
{{- fail "autoscaling: config.kafka.sasl.username is a ${...} placeholder, which KEDA cannot expand: write the name, or set autoscaling.authenticationRef to a TriggerAuthentication of your own" -}}
{{- end -}}
{{- $_ = set $configMapData "username" $username -}}
{{- $configMapRefs = append $configMapRefs (dict "parameter" "username" "name" (printf "%s-keda" (include "callback-sidecar.fullname" .)) "key" "username") -}}
{{- $secretRefs = append $secretRefs (dict "parameter" "password" "name" (include "callback-sidecar.secretName" .) "key" "CALLBACK_KAFKA_SASL_PASSWORD") -}}
{{- end -}}
{{- end -}}
{{- if get $ssl "enabled" -}}
{{- $_ := set $metadata "tls" "enable" -}}
{{- if eq (toString (get $ssl "reject-unauthorized")) "false" -}}
{{- $_ = set $metadata "unsafeSsl" "true" -}}
{{- end -}}
{{- if not $ownRef.name -}}
{{- range $file, $parameter := dict "ca-file" "ca" "cert-file" "cert" "key-file" "key" -}}
{{- with get $ssl $file -}}
{{- $source := include "callback-sidecar.fileSource" (dict "root" $ "path" .) | fromJson -}}
{{- if not $source -}}
{{- fail (printf "autoscaling: config.kafka.ssl.%s %s is not a key of a Secret or ConfigMap mounted through extraVolumes/extraVolumeMounts, where KEDA could read it too: mount it from one, or set autoscaling.authenticationRef to a TriggerAuthentication of your own" $file .) -}}
{{- end -}}
{{- $ref := dict "parameter" $parameter "name" $source.name "key" $source.key -}}
{{- if eq $source.kind "secret" -}}
{{- $secretRefs = append $secretRefs $ref -}}
{{- else -}}
{{- $configMapRefs = append $configMapRefs $ref -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $authRef := dict -}}
{{- if $ownRef.name -}}
{{- $authRef = dict "name" $ownRef.name "kind" ($ownRef.kind | default "TriggerAuthentication") -}}
{{- else if or $secretRefs $configMapRefs -}}
{{- $authRef = dict "name" (include "callback-sidecar.fullname" .) -}}
{{- end -}}
{{- dict "metadata" $metadata "secretTargetRef" $secretRefs "configMapTargetRef" $configMapRefs "configMapData" $configMapData "authenticationRef" $authRef | toJson -}}
{{- end -}}

{{/* Values of autoscaling that the schema cannot judge alone; fails with what to change. */}}
{{- define "callback-sidecar.checkAutoscaling" -}}
{{- $a := .Values.autoscaling -}}
{{- if not .Values.deployment.enabled -}}
{{- fail "autoscaling.enabled scales the chart's own Deployment, and deployment.enabled is false: the sidecar runs in your app's pods, and the app's workload decides their count (README: Autoscaling)" -}}
{{- end -}}
{{- $partitions := int $a.partitions -}}
{{- if lt $partitions 1 -}}
{{- fail "autoscaling.partitions is required with autoscaling.enabled: the partition count of the event topics (of the largest, with several). A replica beyond it gets no partition" -}}
{{- end -}}
{{- $max := int ($a.maxReplicaCount | default $partitions) -}}
{{- if gt $max $partitions -}}
{{- fail (printf "autoscaling.maxReplicaCount %d exceeds autoscaling.partitions %d: a replica beyond the partition count gets no partition and sits idle. Lower maxReplicaCount, or add partitions first" $max $partitions) -}}
{{- end -}}
{{- if gt (int $a.minReplicaCount) $max -}}
{{- fail (printf "autoscaling.minReplicaCount %d exceeds maxReplicaCount %d" (int $a.minReplicaCount) $max) -}}
{{- end -}}
{{- if and (eq (int $a.minReplicaCount) 0) (not $a.includeRetryTopics) -}}
{{- fail "autoscaling.minReplicaCount 0 scales to zero replicas, where nothing consumes the retry topics: set autoscaling.includeRetryTopics so that waiting retries keep (or bring back) a replica" -}}
{{- end -}}
{{- $kafka := .Values.config.kafka | default dict -}}
{{- if not (or (get $kafka "topics") (hasKey $kafka "topic-pattern")) -}}
{{- fail "autoscaling: config.kafka.topics is empty (and no topic-pattern): there is no event topic to watch the lag of" -}}
{{- end -}}
{{- end -}}

{{/* The ScaledObject's triggers, as a JSON list of {metadata, authenticationRef}. */}}
{{- define "callback-sidecar.kedaTriggers" -}}
{{- $a := .Values.autoscaling -}}
{{- $topology := include "callback-sidecar.kafkaTopology" . | fromJson -}}
{{- $connection := include "callback-sidecar.kedaConnection" . | fromJson -}}
{{- $kafka := .Values.config.kafka | default dict -}}
{{- $common := merge (dict "lagThreshold" (toString (int64 $a.lagThreshold)) "activationLagThreshold" (toString (int64 $a.activationLagThreshold))) $connection.metadata -}}
{{- $events := dict "consumerGroup" $topology.group "offsetResetPolicy" (eq (toString (get $kafka "from-beginning")) "true" | ternary "earliest" "latest") -}}
{{- $triggers := list -}}
{{- if $topology.pattern -}}
{{- /* topic-pattern: no topic, so KEDA sums the lag of every topic the group has offsets on. */ -}}
{{- $triggers = append $triggers (merge (deepCopy $events) $common) -}}
{{- else -}}
{{- range $topology.events -}}
{{- $triggers = append $triggers (merge (dict "topic" .) (deepCopy $events) $common) -}}
{{- end -}}
{{- end -}}
{{- if $a.includeRetryTopics -}}
{{- /* The retry consumer starts from the beginning; while a replica runs, a partition whose offset
       stands still is retries waiting for their time (a tier holds its head until due): not work. */ -}}
{{- $retry := dict "consumerGroup" $topology.retryGroup "offsetResetPolicy" "earliest" -}}
{{- if gt (int $a.minReplicaCount) 0 -}}
{{- $_ := set $retry "excludePersistentLag" "true" -}}
{{- end -}}
{{- range $topology.retryTopics -}}
{{- $triggers = append $triggers (merge (dict "topic" .) (deepCopy $retry) $common) -}}
{{- end -}}
{{- end -}}
{{- $out := list -}}
{{- range $triggers -}}
{{- $out = append $out (dict "metadata" . "authenticationRef" $connection.authenticationRef) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}
