# Sourced by Helpline's scripts: pinned versions of what Debian does not
# package, and where things live. Every HL_* variable can be set beforehand.
HL_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HL_DEPS_DIR=${HL_DEPS_DIR:-$HOME/.cache/helpline}
HL_BUILD_DIR=${HL_BUILD_DIR:-$HL_REPO/build}
HL_STACK_DIR=$(realpath -m "${HL_STACK_DIR:-$HL_REPO/.stack}")  # servers chdir: no relative paths

KAFKA_VERSION=4.4.0
LOG4J_VERSION=2.25.5  # the log4j 2 that kafka_2.13 depends on, for its slf4j binding
# librdkafka from Debian's source package (tools/build-librdkafka): bookworm's
# 2.0.2 spins its main loop (#4684) and cannot use Kafka 4 (#4948).
RDKAFKA_VERSION=2.14.2
RDKAFKA_DEBIAN_VERSION=2.14.2-1
RDKAFKA_DEBIAN_SUITES="unstable testing"
RDKAFKA_DEBIAN_MIRROR=http://deb.debian.org/debian
RDKAFKA_ORIG_SHA256=4d53568c13717b167d12c7b2a0fe12aeb5d6bfe02de53df5b68f86d870a81b33
HELM_VERSION=v3.19.0
# The media server (go install): v1.13.6 and later replace pion with forks
# the Go proxy here refuses.
LIVEKIT_VERSION=v1.13.5
# Headless participants for the media tests (PyPI; the wheel carries the
# native client).
PYTHON_LIVEKIT_VERSION=1.2.1
PYTHON_LIVEKIT_API_VERSION=1.2.2
BUF_VERSION=1.75.0
GOOGLE_PROTO_FILES_VERSION=5.0.1
# The web edge: OpenAPI from the google.api.http annotations (go install),
# the TypeScript clients (protobuf-es, connect-es), the reference page's
# bundler and the browser test's driver of Debian's chromium (npm).
GNOSTIC_VERSION=v0.7.1
PROTOBUF_ES_VERSION=2.17.0
CONNECT_ES_VERSION=2.3.0
ESBUILD_VERSION=0.28.2
TYPESCRIPT_VERSION=5.9.3
PUPPETEER_CORE_VERSION=25.16.0
# Validates rendered manifests offline against the Kubernetes schemas it bundles.
KUBERNETES_VALIDATE_VERSION=1.37.0
# The worked analysis's venv (tools/analyze): the Python protobuf runtime of
# the same release as Debian's protoc (3.21.12), which generates its classes.
CONFLUENT_KAFKA_VERSION=2.16.1
PYTHON_PROTOBUF_VERSION=4.21.12

HL_KAFKA_LIBS=$HL_DEPS_DIR/kafka-$KAFKA_VERSION/libs
HL_RDKAFKA_DIR=$HL_DEPS_DIR/librdkafka-$RDKAFKA_VERSION
# ccache hits for any clone of the repository, wherever it lies.
export CCACHE_BASEDIR=$HL_REPO CCACHE_NOHASHDIR=1
export PATH="$HL_DEPS_DIR/bin:$HL_DEPS_DIR/npm/node_modules/.bin:/usr/local/go/bin:$PATH"

hl_say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
