#!/usr/bin/env bash
# deploy/local/stack's promises, checked against the test run's stack (the
# `stack` fixture) and failing ones:
# - start on a running stack starts nothing new, LiveKit and Prometheus included;
# - Prometheus listens on 127.0.0.1 only, has loaded the chart's rules with
#   runbook links into the checkout, and reloads on POST /-/reload;
# - a start that fails says why (the log's last lines, or promtool's words
#   for rules Prometheus would refuse), exits non-zero and leaves no process
#   behind, including the Redis and Prometheus it had already started.
# HL_LIVEKIT=no / HL_PROMETHEUS=no (a stack started so) skip their checks.
set -uo pipefail
stack=$HL_SOURCE_DIR/deploy/local/stack
fail() { echo "FAIL: $*" >&2; exit 1; }
livekit_wanted() { [ "${HL_LIVEKIT:-yes}" != no ]; }
prometheus_wanted() { [ "${HL_PROMETHEUS:-yes}" != no ]; }

kafka_pid_before=$(cat "$HL_STACK_DIR/kafka/kafka.pid")
livekit_wanted && livekit_pid_before=$(cat "$HL_STACK_DIR/livekit/livekit.pid")
prometheus_wanted && prometheus_pid_before=$(cat "$HL_STACK_DIR/prometheus/prometheus.pid")
output=$("$stack" start 2>&1) || fail "second start exited non-zero: $output"
grep -q "already running" <<<"$output" || fail "second start did not say it was running: $output"
[ "$(cat "$HL_STACK_DIR/kafka/kafka.pid")" = "$kafka_pid_before" ] || fail "second start replaced Kafka"
[ "$(pgrep -fc "$HL_STACK_DIR/kafka/server.properties")" = 1 ] || fail "more than one Kafka runs"
if livekit_wanted; then
  [ "$(cat "$HL_STACK_DIR/livekit/livekit.pid")" = "$livekit_pid_before" ] || fail "second start replaced LiveKit"
  # LiveKit serves with the stack's key, creates no room by itself, and sends
  # its webhooks to the sessions port the stack wrote down.
  grep -q "^livekit: running" <<<"$("$stack" status)" || fail "status does not show LiveKit running"
  livekit_port=$(sed -n 's/^LIVEKIT_PORT=//p' "$HL_STACK_DIR/stack.env")
  webhook_port=$(sed -n 's/^SESSIONS_WEBHOOK_PORT=//p' "$HL_STACK_DIR/stack.env")
  [ "$(curl -s "http://127.0.0.1:$livekit_port/")" = OK ] || fail "LiveKit does not answer on $livekit_port"
  grep -q "auto_create: false" "$HL_STACK_DIR/livekit/livekit.yaml" || fail "LiveKit creates rooms by itself"
  grep -q "127.0.0.1:$webhook_port/livekit/webhook" "$HL_STACK_DIR/livekit/livekit.yaml" ||
    fail "LiveKit's webhooks do not go to the sessions port in stack.env"
  [ -s "$HL_STACK_DIR/secrets/livekit-api-secret" ] || fail "no LiveKit secret in the stack's secrets"
fi

if prometheus_wanted; then
  [ "$(cat "$HL_STACK_DIR/prometheus/prometheus.pid")" = "$prometheus_pid_before" ] ||
    fail "second start replaced Prometheus"
  [ "$(pgrep -fc "$HL_STACK_DIR/prometheus/prometheus.yml")" = 1 ] || fail "more than one Prometheus runs"
  grep -q "^prometheus: running" <<<"$("$stack" status)" || fail "status does not show Prometheus running"
  prometheus_url=$(sed -n 's/^PROMETHEUS_URL=//p' "$HL_STACK_DIR/stack.env")
  [ -n "$prometheus_url" ] || fail "no PROMETHEUS_URL in stack.env"
  listening=$(ss -ltnupH | grep "pid=$prometheus_pid_before," | awk '{print $5}')
  [ -n "$listening" ] || fail "Prometheus listens on nothing"
  grep -v '^127\.0\.0\.1:' <<<"$listening" && fail "Prometheus listens beyond loopback: $listening"
  # The same rules as the chart's file, by name, with RUNBOOK_BASE replaced.
  python3 - "$HL_SOURCE_DIR/charts/helpline/files/prometheus/alerts.yaml" "$prometheus_url" "$HL_SOURCE_DIR" <<'PY' ||
import json, sys, urllib.request, yaml
chart_file, url, checkout = sys.argv[1:]
chart = {rule.get("alert") or rule.get("record")
         for group in yaml.safe_load(open(chart_file))["groups"] for rule in group["rules"]}
groups = json.load(urllib.request.urlopen(url + "/api/v1/rules"))["data"]["groups"]
loaded = {rule["name"] for group in groups for rule in group["rules"]}
if not chart or loaded != chart:
    sys.exit(f"rules in the chart {sorted(chart)}, loaded {sorted(loaded)}")
links = [rule["annotations"]["runbook_url"] for group in groups for rule in group["rules"]
         if "runbook_url" in rule.get("annotations", {})]
wrong = [link for link in links if not link.startswith(f"file://{checkout}/")]
if wrong:
    sys.exit(f"runbook links not into the checkout: {wrong}")
PY
    fail "Prometheus has not loaded the chart's rules"
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$prometheus_url/-/reload")" = 200 ] ||
    fail "POST /-/reload is refused"
fi

# What a failed start in $1 left: anything with the folder on its command
# line, and Redis, which renames its process ("redis-server 127.0.0.1:<port>"),
# by its working folder.
left_behind() {
  pgrep -f "$1/"
  for pid in $(pgrep redis-server); do
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$1/redis" ] && echo "$pid"
  done
}

# Kafka's port is taken by the running test stack, so this Kafka cannot bind it.
taken_port=$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=127.0.0.1://p' "$HL_STACK_DIR/stack.env")
broken_dir=$(mktemp -d)
copy_dir=$(mktemp -d)
trap 'HL_STACK_DIR=$broken_dir "$stack" stop >/dev/null 2>&1; rm -rf "$broken_dir" "$copy_dir"' EXIT
output=$(HL_STACK_DIR=$broken_dir HL_KAFKA_PORT=$taken_port HL_REDIS_PORT=0 HL_PROMETHEUS_PORT=0 "$stack" start 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "start on a taken port succeeded: $output"
grep -q "last lines of $broken_dir/kafka/server.log" <<<"$output" || fail "no log tail shown: $output"
grep -qi "address already in use\|BindException" <<<"$output" || fail "the log tail does not say why: $output"
if prometheus_wanted; then
  [ -s "$broken_dir/prometheus/prometheus.log" ] || fail "the failed start did not get as far as Prometheus"
fi
left=$(left_behind "$broken_dir")
[ -z "$left" ] || fail "processes left behind: $left"

if prometheus_wanted; then
  # Prometheus's port is taken by the test stack's: it fails after Redis started.
  output=$(HL_STACK_DIR=$broken_dir HL_KAFKA_PORT=0 HL_REDIS_PORT=0 HL_LIVEKIT=no \
    HL_PROMETHEUS_PORT=${prometheus_url##*:} "$stack" start --fresh 2>&1)
  rc=$?
  [ $rc -ne 0 ] || fail "start on Prometheus's taken port succeeded: $output"
  grep -q "last lines of $broken_dir/prometheus/prometheus.log" <<<"$output" || fail "no log tail shown: $output"
  grep -qi "address already in use" <<<"$output" || fail "the log tail does not say why: $output"
  left=$(left_behind "$broken_dir")
  [ -z "$left" ] || fail "processes left behind: $left"

  # A checkout whose rules Prometheus would refuse: promtool says so, and
  # nothing starts.
  mkdir -p "$copy_dir/deploy/local" "$copy_dir/tools" "$copy_dir/charts/helpline/files/prometheus"
  cp "$stack" "$copy_dir/deploy/local/"
  cp "$HL_SOURCE_DIR/tools/env.sh" "$copy_dir/tools/"
  cat > "$copy_dir/charts/helpline/files/prometheus/alerts.yaml" <<'YAML'
groups:
  - name: broken
    rules:
      - alert: Unparsable
        expr: sum(up{job="helpline"}
YAML
  output=$(HL_STACK_DIR=$broken_dir HL_KAFKA_PORT=0 HL_REDIS_PORT=0 HL_LIVEKIT=no HL_PROMETHEUS_PORT=0 \
    "$copy_dir/deploy/local/stack" start --fresh 2>&1)
  rc=$?
  [ $rc -ne 0 ] || fail "start with rules Prometheus refuses succeeded: $output"
  grep -q "promtool check config" <<<"$output" || fail "the failed start does not name promtool: $output"
  grep -q "FAILED" <<<"$output" || fail "promtool's words are not shown: $output"
  [ ! -e "$broken_dir/redis" ] && [ ! -e "$broken_dir/kafka" ] ||
    fail "the start went on after promtool refused the rules"
  left=$(left_behind "$broken_dir")
  [ -z "$left" ] || fail "processes left behind: $left"
fi
echo "PASS"
