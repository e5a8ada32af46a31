{{/*
The alert rules; with default values this renders exactly deploy/prometheus/callback-sidecar.rules.yaml
(test/deploy checks it), so the chart and the plain manifests never drift apart.
$b / $c add prometheusRule.selector to a bare selector / one that has matchers already.
*/}}
{{- define "callback-sidecar.alertRules" -}}
{{- $r := .Values.prometheusRule -}}
{{- $b := ternary (printf "{%s}" $r.selector) "" (ne $r.selector "") -}}
{{- $c := ternary (printf ",%s" $r.selector) "" (ne $r.selector "") -}}
groups:
  - name: callback-sidecar
    rules:
      - alert: CallbackSidecarCircuitBreakerOpen
        expr: max by (namespace, pod, target_host) (callbacks_circuit_breaker_state{{ $b }}) == 2
        for: {{ $r.breakerOpenFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: Circuit breaker to {{`{{ $labels.target_host }}`}} open for {{ $r.breakerOpenFor }}
          description: >-
            {{`{{ $labels.pod }}`}} sends nothing to {{`{{ $labels.target_host }}`}}: the host kept failing and its
            deliveries go to the retry topic or end FAILED. Check the receiver.
      - alert: CallbackSidecarHighFailureRatio
        expr: |-
          (
            sum by (namespace, tenant) (rate(callbacks_deliveries_total{status="FAILED"{{ $c }}}[10m]))
            /
            sum by (namespace, tenant) (rate(callbacks_deliveries_total{{ $b }}[10m]))
          ) > {{ $r.failureRatio }}
        for: {{ $r.failureRatioFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: More than {{ mulf $r.failureRatio 100 }}% of deliveries for tenant {{`{{ $labels.tenant }}`}} end FAILED
          description: >-
            {{`{{ $value | humanizePercentage }}`}} of final deliveries failed over 10 minutes. Failed deliveries are
            in the dead-letter topic; replay them once the receiver is fixed.
      - alert: CallbackSidecarConsumptionStopped
        expr: |-
          max by (namespace, pod) (callbacks_consumer_paused{{ $b }}) == 1
          or
          (
            sum by (namespace, pod) (callbacks_inflight_deliveries{{ $b }}) > 0
            and
            sum by (namespace, pod) (rate(callbacks_events_consumed_total{{ $b }}[15m])) == 0
          )
        for: {{ $r.consumptionStoppedFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: '{{`{{ $labels.pod }}`}} consumes no records'
          description: >-
            Fetching is paused (a partition's buffered records are full) or deliveries are in flight while no record has been
            consumed for {{ $r.consumptionStoppedFor }}. Look for a slow target host and the consumer's lag.
      - alert: CallbackSidecarMetricsAbsent
        expr: absent(callbacks_inflight_deliveries{{ $b }})
        for: {{ $r.consumptionStoppedFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: No callback-sidecar is scraped
          description: Nothing exports callbacks_inflight_deliveries; the sidecar is down or not scraped.
      # no_subscription and filtered are normal (a tenant subscribes to some event types, or filters
      # them out): only records that break the contract alert.
      - alert: CallbackSidecarSkippedRecordsRising
        expr: sum by (namespace, reason) (rate(callbacks_events_skipped_total{reason!~"no_subscription|filtered"{{ $c }}}[10m])) > {{ $r.skippedRate }}
        for: {{ $r.skippedFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: Records skipped as {{`{{ $labels.reason }}`}}
          description: >-
            Producers send records the sidecar cannot dispatch ({{`{{ $labels.reason }}`}}); they are logged, counted and
            dead-lettered, never delivered.
      - alert: CallbackSidecarDeadLettersRising
        expr: sum by (namespace, tenant, reason) (increase(callbacks_dead_letters_total{{ $b }}[10m])) > 0
        for: {{ $r.deadLettersFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: Dead letters keep arriving for tenant {{`{{ $labels.tenant }}`}} ({{`{{ $labels.reason }}`}})
          description: >-
            Deliveries or records end in the dead-letter topic. Fix the cause, then run callback-sidecar replay.
      # The second term catches a first refusal: increase() cannot see a series born at 1.
      - alert: CallbackSidecarHandoffRefused
        expr: |-
          sum by (namespace, topic, reason) (increase(callbacks_handoff_refused_total{{ $b }}[10m])) > 0
          or
          sum by (namespace, topic, reason) (callbacks_handoff_refused_total{{ $b }} unless callbacks_handoff_refused_total{{ $b }} offset 10m) > 0
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: Kafka refuses writes to {{`{{ $labels.topic }}`}} ({{`{{ $labels.reason }}`}})
          description: >-
            Retry or dead-letter records Kafka will never take were dropped so that the records behind them can
            finish; each refusal is logged. Check the topic's max.message.bytes, ACLs and existence.
      # Retries waiting for hours: the retry topics never drained in 2h and still grow.
      - alert: CallbackSidecarRetryBacklogGrowing
        expr: |-
          min by (namespace) (min_over_time(callbacks_retry_backlog{{ $b }}[2h])) > 0
          and
          max by (namespace) (delta(callbacks_retry_backlog{{ $b }}[1h])) > 0
        for: 30m
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: Retries have piled up for hours in {{`{{ $labels.namespace }}`}}
          description: >-
            The retry topic and its delay tiers have not drained for 2 hours and still grow: receivers have been
            failing for hours, or rate limits are below the event rate. Nothing is lost (deliveries wait on their
            schedules); callbacks_retries_scheduled_total names the target hosts.
      - alert: CallbackSidecarProxyFailing
        expr: sum by (namespace, reason) (rate(callbacks_proxy_errors_total{{ $b }}[5m])) > 0
        for: {{ $r.proxyErrorsFor }}
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: The egress proxy fails deliveries in {{`{{ $labels.namespace }}`}} ({{`{{ $labels.reason }}`}})
          description: >-
            Attempts through the egress proxy (HTTPS_PROXY / HTTP_PROXY, or pyfly.callbacks.http.proxy) keep failing as
            {{`{{ $labels.reason }}`}}. unreachable or timeout: the proxy is down, or a NetworkPolicy keeps the pods from it;
            auth_required: the proxy credentials in the Secret are wrong; refused: the proxy will not connect to the target;
            bad_response: it does not answer CONNECT. The attempts are retried on their schedules and not charged to the target
            hosts' breakers; deliveries that run out of attempts end FAILED.
      # The second term catches a first failure: increase() cannot see a series born at 1.
      - alert: CallbackSidecarTlsReloadFailing
        expr: |-
          sum by (namespace, pod) (increase(callbacks_tls_reloads_total{outcome="failed"{{ $c }}}[15m])) > 0
          or
          sum by (namespace, pod) (callbacks_tls_reloads_total{outcome="failed"{{ $c }}} unless callbacks_tls_reloads_total{outcome="failed"{{ $c }}} offset 15m) > 0
        labels:
          severity: {{ $r.severity }}
        annotations:
          summary: '{{`{{ $labels.pod }}`}} cannot load its changed receiver TLS files'
          description: >-
            Receiver TLS files (the receiverTls Secret, or a tenant's tls files) changed on disk but do not load: a file
            missing, not PEM, or a key that does not match its certificate. The sidecar keeps the previous files and logs
            the key at fault; fix the Secret. A certificate that cannot be renewed this way fails handshakes once it expires.
{{- end -}}
