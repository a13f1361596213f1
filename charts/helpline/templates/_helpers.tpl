{{/* The release's name for its objects, at most 52 characters (room for "-<service>"). */}}
{{- define "helpline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; call with (dict "root" $ "name" <service or "">). */}}
{{- define "helpline.labels" -}}
{{- if .name }}
app.kubernetes.io/name: {{ .name }}
{{- end }}
app.kubernetes.io/part-of: helpline
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "name" "identity"). */}}
{{- define "helpline.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "helpline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* A service's settings: the defaults with its own on top. */}}
{{- define "helpline.settings" -}}
{{- $service := index .root.Values.services .name | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.defaults) (omit $service "config" "enabled" "processorTarget")) -}}
{{- end -}}

{{/* The payment processor payments calls. */}}
{{- define "helpline.processorTarget" -}}
{{- if .Values.pspSandbox.enabled -}}
{{ include "helpline.fullname" . }}-psp-sandbox:{{ .Values.grpcPort }}
{{- else -}}
{{ required "services.payments.processorTarget is required without the sandbox processor" .Values.services.payments.processorTarget }}
{{- end -}}
{{- end -}}

{{/* One service's config file (JSON); secrets come through the environment. */}}
{{- define "helpline.config" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $config := dict
  "grpc" (dict "listen" (printf "0.0.0.0:%v" $v.grpcPort))
  "metrics" (dict "listen" (printf "0.0.0.0:%v" $v.metricsPort))
  "log" (dict "level" $v.logLevel)
-}}
{{- if ne .name "psp-sandbox" -}}
{{- $_ := set $config "clock" (dict "rate" $v.clockRate) -}}
{{- $kafka := dict "bootstrap_servers" $v.kafka.bootstrapServers "security_protocol" $v.kafka.securityProtocol "group_protocol" $v.kafka.groupProtocol -}}
{{- if $v.kafka.saslMechanism }}{{ $_ := set $kafka "sasl_mechanism" $v.kafka.saslMechanism }}{{ end -}}
{{- if $v.kafka.saslUsername }}{{ $_ := set $kafka "sasl_username" $v.kafka.saslUsername }}{{ end -}}
{{- if $v.kafka.caSecret.name }}{{ $_ := set $kafka "ssl_ca_location" "/etc/helpline/kafka-ca/ca.crt" }}{{ end -}}
{{- $_ := set $config "kafka" $kafka -}}
{{- end -}}
{{- if and (ne .name "identity") (ne .name "psp-sandbox") -}}
{{- $_ := set $config "auth" (dict "identity_target" (printf "%s-identity:%v" (include "helpline.fullname" $root) $v.grpcPort)) -}}
{{- end -}}
{{- if eq .name "identity" -}}
{{- $_ := set $config "identity" (dict "signing_keys_file" "/etc/helpline/signing-keys/signing-keys.json") -}}
{{- end -}}
{{- if eq .name "matching" -}}
{{- $_ := set $config "redis" (dict "host" $v.redis.host "port" $v.redis.port) -}}
{{- end -}}
{{- if eq .name "payments" -}}
{{- $_ := set $config "payments" (dict "processor_target" (include "helpline.processorTarget" $root)) -}}
{{- end -}}
{{- if eq .name "psp-sandbox" -}}
{{- $_ := set $config "sandbox" (dict "journal_file" "/var/lib/helpline/psp-journal.jsonl") -}}
{{- end -}}
{{- if eq .name "sessions" -}}
{{- $sessions := dict "livekit_url" $v.livekit.url "connections_from" $v.livekit.connectionsFrom "room_sync_interval" $v.livekit.syncInterval -}}
{{- if $v.livekit.apiUrl }}{{ $_ := set $sessions "livekit_api_url" $v.livekit.apiUrl }}{{ end -}}
{{- if eq $v.livekit.connectionsFrom "media_server" }}{{ $_ := set $sessions "webhook_listen" (printf "0.0.0.0:%v" $v.livekit.webhookPort) }}{{ end -}}
{{- $_ := set $config "sessions" $sessions -}}
{{- end -}}
{{- $own := dict -}}
{{- if hasKey $v.services .name }}{{ $own = (index $v.services .name).config | default dict }}{{ end -}}
{{- toPrettyJson (mergeOverwrite $config (deepCopy $own)) -}}
{{- end -}}

{{/* Environment variables of one service: its secrets, by reference. */}}
{{- define "helpline.env" -}}
{{- $v := .root.Values -}}
{{- if ne .name "psp-sandbox" }}
# A restarted container keeps its pod's name: its transactional producer
# fences the one it replaces at once.
- name: HELPLINE_PROCESSOR_REPLICA
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- end }}
{{- if and (ne .name "psp-sandbox") $v.kafka.saslPasswordSecret.name }}
- name: HELPLINE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $v.kafka.saslPasswordSecret.name }}, key: {{ $v.kafka.saslPasswordSecret.key }}}
{{- end }}
{{- if eq .name "identity" }}
- name: HELPLINE_IDENTITY_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.identityKeys.name }}, key: {{ $v.secrets.identityKeys.keyEncryptionKey }}}
- name: HELPLINE_IDENTITY_EMAIL_HASH_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.identityKeys.name }}, key: {{ $v.secrets.identityKeys.emailHashKey }}}
- name: HELPLINE_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.admin.name }}, key: {{ $v.secrets.admin.key }}}
{{- end }}
{{- if and (eq .name "matching") $v.redis.passwordSecret.name }}
- name: HELPLINE_REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $v.redis.passwordSecret.name }}, key: {{ $v.redis.passwordSecret.key }}}
{{- end }}
{{- if eq .name "sessions" }}
- name: HELPLINE_SESSIONS_LIVEKIT_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.livekit.name }}, key: {{ $v.secrets.livekit.apiKeyKey }}}
- name: HELPLINE_SESSIONS_LIVEKIT_API_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.livekit.name }}, key: {{ $v.secrets.livekit.key }}}
{{- end }}
{{- end -}}

{{/* The services this release runs, in order. */}}
{{- define "helpline.enabledServices" -}}
{{- $names := list -}}
{{- range $name := list "identity" "catalog" "matching" "sessions" "payments" -}}
{{- if (index $.Values.services $name).enabled }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- if .Values.pspSandbox.enabled }}{{ $names = append $names "psp-sandbox" }}{{ end -}}
{{- join " " $names -}}
{{- end -}}

{{/* A Go duration ("72h", "1h30m", "90s", "500ms") in seconds. */}}
{{- define "helpline.seconds" -}}
{{- $total := 0.0 -}}
{{- range $part := regexFindAll "[0-9.]+(ms|h|m|s)" (toString .) -1 -}}
{{- $unit := regexFind "(ms|h|m|s)$" $part -}}
{{- $number := float64 (trimSuffix $unit $part) -}}
{{- $scale := get (dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001) $unit -}}
{{- $total = addf $total (mulf $number $scale) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Refunds must come before payouts: the person's refund window
(sessions.refund_window) may not be longer than the expert's payout hold
(payments.refund_window), or a refund could find the money paid out. */}}
{{- define "helpline.checkRefundWindow" -}}
{{- $services := .Values.services | default dict -}}
{{- $refund := dig "sessions" "config" "sessions" "refund_window" "72h" $services -}}
{{- $hold := dig "payments" "config" "payments" "refund_window" "72h" $services -}}
{{- if gt (float64 (include "helpline.seconds" $refund)) (float64 (include "helpline.seconds" $hold)) -}}
{{- fail (printf "services.sessions.config.sessions.refund_window (%v) is longer than the payout hold services.payments.config.payments.refund_window (%v): a refund could come after the expert was paid out" $refund $hold) -}}
{{- end -}}
{{- end -}}
