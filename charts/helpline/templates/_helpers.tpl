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

{{/* A service's (or the gateway's) settings: the defaults with its own on top. */}}
{{- define "helpline.settings" -}}
{{- $own := index .root.Values.services .name | default dict -}}
{{- if eq .name "gateway" }}{{ $own = .root.Values.gateway }}{{ end -}}
{{- $settings := pick $own "replicas" "resources" "autoscaling" "podDisruptionBudget" "startupSeconds" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $settings)) -}}
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
  "metrics" (dict "listen" (printf "0.0.0.0:%v" $v.metricsPort))
  "log" (dict "level" $v.logLevel)
-}}
{{- $own := dict -}}
{{- $tls := $v.tls.enabled -}}
{{- /* The release's certificate: served, presented to the services called, and their CA. */ -}}
{{- $mine := dict "cert_file" "/etc/helpline/tls/tls.crt" "key_file" "/etc/helpline/tls/tls.key" "ca_file" "/etc/helpline/tls/ca.crt" -}}
{{- $_ := set $config "tls" (dict "required" $v.tls.required) -}}
{{- if eq .name "gateway" -}}
{{- /* The gateway refuses keys it does not have: no grpc, clock, kafka or auth. */ -}}
{{- $gateway := dict
  "listen" (printf "0.0.0.0:%v" $v.gateway.port)
  "cors_origins" (join "," $v.gateway.corsOrigins)
  "descriptor_set" "/usr/local/share/helpline/helpline.binpb"
  "openapi_file" "/usr/local/share/helpline/openapi.yaml"
  "max_request_bytes" $v.gateway.maxRequestBytes
  "unary_timeout" $v.gateway.unaryTimeout
  "stream_timeout" $v.gateway.streamTimeout
  "anonymous_calls_per_minute_per_client" $v.gateway.anonymousCallsPerMinutePerClient
  "trusted_proxies" (join "," $v.gateway.trustedProxies)
-}}
{{- range $service := include "helpline.gatewayBackends" $root | splitList " " -}}
{{- $_ := set $gateway (printf "%s_target" $service) (printf "%s-%s:%v" (include "helpline.fullname" $root) $service $v.grpcPort) -}}
{{- end -}}
{{- if $tls }}{{ $_ := set $gateway "backend_tls" $mine }}{{ end -}}
{{- $_ := set $config "gateway" $gateway -}}
{{- $own = $v.gateway.config | default dict -}}
{{- else -}}
{{- $grpc := dict "listen" (printf "0.0.0.0:%v" $v.grpcPort) "reflection" $v.grpcReflection -}}
{{- if $tls -}}
{{- $_ := set $grpc "tls" (dict "cert_file" $mine.cert_file "key_file" $mine.key_file "client_ca_file" $mine.ca_file) -}}
{{- $_ := set $grpc "health_listen" (printf "0.0.0.0:%v" $v.tls.healthPort) -}}
{{- end -}}
{{- $_ := set $config "grpc" $grpc -}}
{{- if ne .name "psp-sandbox" -}}
{{- $_ := set $config "clock" (dict "rate" $v.clockRate) -}}
{{- $kafka := dict "bootstrap_servers" $v.kafka.bootstrapServers "security_protocol" $v.kafka.securityProtocol "group_protocol" $v.kafka.groupProtocol -}}
{{- if $v.kafka.saslMechanism }}{{ $_ := set $kafka "sasl_mechanism" $v.kafka.saslMechanism }}{{ end -}}
{{- if hasPrefix "sasl_" $v.kafka.securityProtocol }}{{ $_ := set $kafka "sasl_username" (index $v.kafka.principals .name).username }}{{ end -}}
{{- if $v.kafka.caSecret.name }}{{ $_ := set $kafka "ssl_ca_location" "/etc/helpline/kafka-ca/ca.crt" }}{{ end -}}
{{- $_ := set $config "kafka" $kafka -}}
{{- end -}}
{{- if ne .name "psp-sandbox" -}}
{{- $auth := dict -}}
{{- if ne .name "identity" -}}
{{- $_ := set $auth "identity_target" (printf "%s-identity:%v" (include "helpline.fullname" $root) $v.grpcPort) -}}
{{- if $tls }}{{ $_ := set $auth "identity" (dict "tls" $mine) }}{{ end -}}
{{- end -}}
{{- if $v.trustedProxies }}{{ $_ := set $auth "trusted_proxies" (join "," $v.trustedProxies) }}{{ end -}}
{{- if $auth }}{{ $_ := set $config "auth" $auth }}{{ end -}}
{{- end -}}
{{- if eq .name "identity" -}}
{{- $_ := set $config "identity" (dict "signing_keys_file" "/etc/helpline/signing-keys/signing-keys.json") -}}
{{- end -}}
{{- if eq .name "matching" -}}
{{- $_ := set $config "redis" (dict "host" $v.redis.host "port" $v.redis.port) -}}
{{- end -}}
{{- if eq .name "payments" -}}
{{- $payments := dict "processor_target" (include "helpline.processorTarget" $root) -}}
{{- if $tls -}}
{{- $processor := deepCopy $mine -}}
{{- if $v.tls.processorCaSecret.name }}{{ $_ := set $processor "ca_file" "/etc/helpline/processor-ca/ca.crt" }}{{ end -}}
{{- $_ := set $payments "processor" (dict "tls" $processor) -}}
{{- end -}}
{{- $_ := set $config "payments" $payments -}}
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
{{- if hasKey $v.services .name }}{{ $own = (index $v.services .name).config | default dict }}{{ end -}}
{{- end -}}
{{- toPrettyJson (mergeOverwrite $config (deepCopy $own)) -}}
{{- end -}}

{{/* Environment variables of one service: its secrets, by reference. The
gateway has none (and refuses HELPLINE_* variables that name no key of its own). */}}
{{- define "helpline.env" -}}
{{- $v := .root.Values -}}
{{- $onKafka := not (has .name (list "psp-sandbox" "gateway")) -}}
{{- if $onKafka }}
# A restarted container keeps its pod's name: its transactional producer
# fences the one it replaces at once.
- name: HELPLINE_PROCESSOR_REPLICA
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- end }}
{{- if and $onKafka (hasPrefix "sasl_" $v.kafka.securityProtocol) }}
{{- $secret := (index $v.kafka.principals .name).passwordSecret }}
- name: HELPLINE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret.name }}, key: {{ $secret.key }}}
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
{{- if has .name (list "catalog" "matching" "sessions") }}
- name: HELPLINE_PERSONAL_KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef: {name: {{ $v.secrets.personalKeys.name }}, key: {{ .name }}}
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

{{/* What this release runs, in order: the services, the sandbox processor,
the gateway (each a Deployment, Service, ConfigMap and NetworkPolicy). */}}
{{- define "helpline.enabledServices" -}}
{{- $names := list -}}
{{- range $name := list "identity" "catalog" "matching" "sessions" "payments" -}}
{{- if (index $.Values.services $name).enabled }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- if .Values.pspSandbox.enabled }}{{ $names = append $names "psp-sandbox" }}{{ end -}}
{{- if .Values.gateway.enabled }}{{ $names = append $names "gateway" }}{{ end -}}
{{- join " " $names -}}
{{- end -}}

{{/* The services the gateway stands in front of: all five, always (its
readiness asks each of them). */}}
{{- define "helpline.gatewayBackends" -}}
identity catalog matching sessions payments
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

{{/* The gateway's settings that must agree with the rest of the release. */}}
{{- define "helpline.checkGateway" -}}
{{- $v := .Values -}}
{{- if $v.gateway.enabled -}}
{{- $own := $v.gateway.config | default dict -}}
{{- range $service := include "helpline.gatewayBackends" . | splitList " " -}}
{{- if and (not (index $v.services $service).enabled) (not (dig "gateway" (printf "%s_target" $service) "" $own)) -}}
{{- fail (printf "the gateway calls %s, which this release does not run: enable services.%s, point gateway.config.gateway.%s_target at it, or disable the gateway" $service $service $service) -}}
{{- end -}}
{{- end -}}
{{- if eq (int $v.gateway.port) (int $v.metricsPort) -}}
{{- fail (printf "gateway.port (%v) is metricsPort: the gateway serves both" $v.gateway.port) -}}
{{- end -}}
{{- if $v.gateway.ingress.enabled -}}
{{- $annotations := $v.gateway.ingress.annotations | default dict -}}
{{- $stream := dig "gateway" "stream_timeout" $v.gateway.streamTimeout $own -}}
{{- $read := get $annotations "nginx.ingress.kubernetes.io/proxy-read-timeout" -}}
{{- if and $read (lt (float64 $read) (float64 (include "helpline.seconds" $stream))) -}}
{{- fail (printf "nginx.ingress.kubernetes.io/proxy-read-timeout (%vs) is shorter than the gateway's stream timeout (%v): nginx would cut quiet WatchRequest and WatchOffers streams" $read $stream) -}}
{{- end -}}
{{- $body := get $annotations "nginx.ingress.kubernetes.io/proxy-body-size" -}}
{{- $limit := dig "gateway" "max_request_bytes" $v.gateway.maxRequestBytes $own -}}
{{- if and $body (ne (toString $body) "0") (lt (float64 (include "helpline.nginxBytes" $body)) (float64 $limit)) -}}
{{- fail (printf "nginx.ingress.kubernetes.io/proxy-body-size (%v) is below the gateway's max request bytes (%v): callers would get nginx's 413 page, not RESOURCE_EXHAUSTED" $body $limit) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* An nginx size ("1m", "512k", "1048576") in bytes. */}}
{{- define "helpline.nginxBytes" -}}
{{- $text := lower (toString .) -}}
{{- $unit := regexFind "[kmg]$" $text -}}
{{- $scale := get (dict "" 1.0 "k" 1024.0 "m" 1048576.0 "g" 1073741824.0) $unit -}}
{{- mulf (float64 (trimSuffix $unit $text)) $scale -}}
{{- end -}}

{{/* Kafka with SASL: a mechanism, and each principal that runs here its
own user and password Secret (a shared one would let any service write
every topic); production requires SASL_SSL. */}}
{{- define "helpline.checkTls" -}}
{{- if and .Values.tls.required (not .Values.tls.enabled) -}}
{{- fail "tls.required is set but tls.enabled is not: production's services talk only over TLS" -}}
{{- end -}}
{{- if and .Values.tls.processorCaSecret.name .Values.pspSandbox.enabled -}}
{{- fail "tls.processorCaSecret is for a processor outside the release; the sandbox's certificate is the release's CA's: unset one" -}}
{{- end -}}
{{- range $name, $service := .Values.services -}}
{{- range $key := list "tls" "health_listen" -}}
{{- if hasKey (dig "config" "grpc" dict $service) $key -}}
{{- fail (printf "services.%s.config.grpc.%s: set TLS with tls.* (the chart checks it there), not per service" $name $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey (dig "config" dict $service) "tls" -}}
{{- fail (printf "services.%s.config.tls: set TLS with tls.*, not per service" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "helpline.checkKafka" -}}
{{- $kafka := .Values.kafka -}}
{{- if and $kafka.acls.create (not $kafka.topics.create) -}}
{{- fail "kafka.acls.create needs kafka.topics.create: the topics Job creates the ACLs" -}}
{{- end -}}
{{- range $name, $service := .Values.services -}}
{{- range $key := list "security_protocol" "sasl_mechanism" "sasl_username" "sasl_password" "bootstrap_servers" -}}
{{- if hasKey (dig "config" "kafka" dict $service) $key -}}
{{- fail (printf "services.%s.config.kafka.%s: set Kafka's connection with kafka.* (the chart checks it there), not per service" $name $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $kafka.requireSaslSsl (ne $kafka.securityProtocol "sasl_ssl") -}}
{{- fail (printf "kafka.securityProtocol is %s but kafka.requireSaslSsl is set: production's Kafka takes only SASL_SSL" $kafka.securityProtocol) -}}
{{- end -}}
{{- if hasPrefix "sasl_" $kafka.securityProtocol -}}
{{- if not $kafka.saslMechanism -}}
{{- fail (printf "kafka.securityProtocol is %s: kafka.saslMechanism is required" $kafka.securityProtocol) -}}
{{- end -}}
{{- $users := dict -}}
{{- $secrets := dict -}}
{{- range $name := list "identity" "catalog" "matching" "sessions" "payments" "admin" "analyst" -}}
{{- $principal := index $kafka.principals $name -}}
{{- $secret := $principal.passwordSecret | default dict -}}
{{- if or (and (eq $name "admin") $kafka.topics.create) (and (ne $name "admin") (ne $name "analyst") (index $.Values.services $name).enabled) -}}
{{- if not $secret.name -}}
{{- fail (printf "kafka.principals.%s.passwordSecret.name is required with %s: each principal signs in with a password of its own" $name $kafka.securityProtocol) -}}
{{- end -}}
{{- $secretKey := printf "%s/%s" $secret.name $secret.key -}}
{{- if hasKey $secrets $secretKey -}}
{{- fail (printf "kafka.principals.%s and kafka.principals.%s read the same password (%s): each principal needs its own" (get $secrets $secretKey) $name $secretKey) -}}
{{- end -}}
{{- $_ := set $secrets $secretKey $name -}}
{{- end -}}
{{- if hasKey $users $principal.username -}}
{{- fail (printf "kafka.principals.%s and kafka.principals.%s are the same user (%s): each needs its own (a shared user has the rights of both)" (get $users $principal.username) $name $principal.username) -}}
{{- end -}}
{{- $_ := set $users $principal.username $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
