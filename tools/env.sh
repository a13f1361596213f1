# Sourced by Helpline's scripts: pinned versions of what Debian does not
# package, and where things live. Every HL_* variable can be set beforehand.
HL_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HL_DEPS_DIR=${HL_DEPS_DIR:-$HOME/.cache/helpline}
HL_BUILD_DIR=${HL_BUILD_DIR:-$HL_REPO/build}
HL_STACK_DIR=$(realpath -m "${HL_STACK_DIR:-$HL_REPO/.stack}")  # servers chdir: no relative paths

# Kafka 3.9, not 4.x: Debian's librdkafka 2.0.2 would turn idempotence and
# transactions off against a 4.x broker (KIP-896, librdkafka issue #4948).
KAFKA_VERSION=3.9.1
SLF4J_VERSION=1.7.36  # the slf4j that kafka_2.13 3.9 depends on, for its reload4j binding
HELM_VERSION=v3.19.0
BUF_VERSION=1.75.0
GOOGLE_PROTO_FILES_VERSION=5.0.1
# Validates rendered manifests offline against the Kubernetes schemas it bundles.
KUBERNETES_VALIDATE_VERSION=1.37.0
# The worked analysis's venv (tools/analyze): the Python protobuf runtime of
# the same release as Debian's protoc (3.21.12), which generates its classes.
CONFLUENT_KAFKA_VERSION=2.16.1
PYTHON_PROTOBUF_VERSION=4.21.12

HL_KAFKA_LIBS=$HL_DEPS_DIR/kafka-$KAFKA_VERSION/libs
# ccache hits for any clone of the repository, wherever it lies.
export CCACHE_BASEDIR=$HL_REPO CCACHE_NOHASHDIR=1
export PATH="$HL_DEPS_DIR/bin:$HL_DEPS_DIR/npm/node_modules/.bin:/usr/local/go/bin:$PATH"

hl_say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
