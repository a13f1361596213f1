#!/usr/bin/env bash
# deploy/local/stack's promises, checked against the test run's stack (the
# `stack` fixture) and a second, failing one:
# - start on a running stack starts nothing new, LiveKit included;
# - a start that fails says why (the log's last lines), exits non-zero and
#   leaves no process behind, including the Redis it had already started.
set -uo pipefail
stack=$HL_SOURCE_DIR/deploy/local/stack
fail() { echo "FAIL: $*" >&2; exit 1; }

kafka_pid_before=$(cat "$HL_STACK_DIR/kafka/kafka.pid")
livekit_pid_before=$(cat "$HL_STACK_DIR/livekit/livekit.pid")
output=$("$stack" start 2>&1) || fail "second start exited non-zero: $output"
grep -q "already running" <<<"$output" || fail "second start did not say it was running: $output"
[ "$(cat "$HL_STACK_DIR/kafka/kafka.pid")" = "$kafka_pid_before" ] || fail "second start replaced Kafka"
[ "$(pgrep -fc "$HL_STACK_DIR/kafka/server.properties")" = 1 ] || fail "more than one Kafka runs"
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

# Kafka's port is taken by the running test stack, so this Kafka cannot bind it.
taken_port=$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=127.0.0.1://p' "$HL_STACK_DIR/stack.env")
broken_dir=$(mktemp -d)
trap 'HL_STACK_DIR=$broken_dir "$stack" stop >/dev/null 2>&1; rm -rf "$broken_dir"' EXIT
output=$(HL_STACK_DIR=$broken_dir HL_KAFKA_PORT=$taken_port HL_REDIS_PORT=0 "$stack" start 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "start on a taken port succeeded: $output"
grep -q "last lines of $broken_dir/kafka/server.log" <<<"$output" || fail "no log tail shown: $output"
grep -qi "address already in use\|BindException" <<<"$output" || fail "the log tail does not say why: $output"
# Redis renames its process ("redis-server 127.0.0.1:<port>"): find it by its working folder.
left=$(pgrep -f "$broken_dir/"; for pid in $(pgrep redis-server); do
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$broken_dir/redis" ] && echo "$pid"; done)
[ -z "$left" ] || fail "processes left behind: $left"
echo "PASS"
