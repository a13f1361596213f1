#!/usr/bin/env python3
"""deploy/Dockerfile against what this repository knows without a Docker
engine: its build stage installs tools/bootstrap's build packages, and its
runtime stage installs the package of every shared library the built
binaries load (ldd, then dpkg -S), so the image runs what the tests ran.
The gateway is built in a Go stage at least as new as its go.mod asks,
without cgo (so it loads no shared library), its schema files in the build
stage, and the image has them where the chart's config names them;
protoc-gen-openapi is gnostic at tools/env.sh's GNOSTIC_VERSION, where the
build stage's CMake looks for it. None of this needs the gateway built.
Usage: dockerfile_test.py <build dir>"""
import functools
import os
import re
import subprocess
import sys

from report import finish

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARIES = ["services/identity/helpline-identity", "services/catalog/helpline-catalog",
            "services/matching/helpline-matching", "services/sessions/helpline-sessions",
            "services/payments/helpline-payments", "services/payments/helpline-psp-sandbox",
            "tools/helpline-topics", "tools/helpline-health", "tools/helpline-events"]
# In every Debian image already.
BASE = {"libc6", "libgcc-s1", "libstdc++6"}
# Where the chart's gateway config looks for its files (chart_test.py checks that side).
GATEWAY_SHARE = "/usr/local/share/helpline/"


def stages(dockerfile):
    """Each stage's name (its image when unnamed) and its instructions, in
    order, comments dropped and continued lines joined."""
    found = []
    for chunk in re.split(r"^FROM ", dockerfile, flags=re.M)[1:]:
        lines = [line for line in chunk.splitlines() if not line.lstrip().startswith("#")]
        text = "\n".join(lines).replace("\\\n", " ")
        header = text.split("\n", 1)[0].split()
        name = header[2] if len(header) >= 3 and header[1].upper() == "AS" else header[0]
        found.append({"name": name, "image": header[0], "text": text})
    return found


def stage_packages(stage):
    match = re.search(r"apt-get install -y --no-install-recommends([^&]*)", stage["text"])
    return set(match.group(1).split()) if match else set()


def copies(stage):
    """The stage's COPY instructions as (--from stage or None, sources, destination)."""
    found = []
    for line in stage["text"].splitlines():
        words = line.split()
        if not words or words[0] != "COPY":
            continue
        flags = [w for w in words[1:] if w.startswith("--")]
        paths = [w for w in words[1:] if not w.startswith("--")]
        source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        found.append((source, paths[:-1], paths[-1]))
    return found


def env_value(name):
    with open(os.path.join(ROOT, "tools", "env.sh")) as f:
        return re.search(rf"^{name}=(\S+)", f.read(), re.M).group(1)


def bootstrap_build_packages():
    with open(os.path.join(ROOT, "tools", "bootstrap")) as f:
        text = f.read()
    block = re.search(r"debian_packages=\((.*?)\n\)", text, re.S).group(1)
    build = block.split("# run and test")[0]
    return {word for line in build.splitlines() for word in line.split("#")[0].split()}


@functools.lru_cache(maxsize=None)
def package_of(library):
    for path in (library, library.replace("/usr", "", 1)):
        done = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":")[0]
    return None


def main():
    build_dir = sys.argv[1]
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        dockerfile = f.read()
    failures = []
    all_stages = stages(dockerfile)
    named = {stage["name"]: stage for stage in all_stages}
    build, runtime_stage = named.get("build"), all_stages[-1]
    if build is None:
        return finish(["no stage named build"])
    missing = bootstrap_build_packages() - stage_packages(build)
    if missing:
        failures.append(f"the build stage lacks bootstrap's build packages {sorted(missing)}")
    runtime = stage_packages(runtime_stage)
    needed = set()
    libraries = set()
    for binary in BINARIES:
        path = os.path.join(build_dir, binary)
        if not os.path.exists(path):
            failures.append(f"{binary} is not built")
            continue
        ldd = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        libraries |= {os.path.realpath(library) for library in re.findall(r"=> (/\S+)", ldd)}
    for library in sorted(libraries):
        package = package_of(library)
        if package is None:
            failures.append(f"no package owns {library}")
        else:
            needed.add(package)
    missing = needed - BASE - runtime
    if missing:
        failures.append(f"the runtime stage lacks {sorted(missing)}")
    # librdkafka is built from Debian's newer source and linked in; bookworm's
    # 2.0.2 must not reach the image.
    if "tools/build-librdkafka" not in build["text"]:
        failures.append("the build stage does not build librdkafka with tools/build-librdkafka")
    if any(package.startswith("librdkafka") for package in runtime | stage_packages(build)):
        failures.append("the image installs bookworm's librdkafka")
    failures += gateway_failures(all_stages, build, runtime_stage)
    for copied in ("helpline-topics", "topics.json"):
        if copied not in dockerfile:
            failures.append(f"the image lacks {copied} (the chart's topics Job runs it)")
    if "USER 10001" not in dockerfile:
        failures.append("the image does not run as the non-root user 10001 the chart expects")
    return finish(failures)


def gateway_failures(all_stages, build, runtime_stage):
    failures = []
    go_stages = [s for s in all_stages if s["image"].startswith("golang:")]
    if not go_stages:
        return ["no stage builds on the official Go image (bookworm's Go is too old for the gateway)"]
    go = go_stages[0]
    with open(os.path.join(ROOT, "services", "gateway", "go.mod")) as f:
        wanted = re.search(r"^go (\d+)\.(\d+)", f.read(), re.M).groups()
    tag = re.match(r"golang:(\d+)\.(\d+)", go["image"])
    if not tag or tuple(map(int, tag.groups())) < tuple(map(int, wanted)):
        failures.append(f"the Go stage's {go['image']} is older than go.mod's go {'.'.join(wanted)}")
    gateway_builds = re.findall(r"cd services/gateway\s*&&\s*go build[^\n]*-o (\S+)", go["text"])
    if not gateway_builds:
        failures.append("the Go stage does not go build services/gateway")
    elif not re.search(r"CGO_ENABLED=0", go["text"]):
        failures.append("the gateway is built with cgo: it would load libraries the runtime stage does not list")
    # protoc-gen-openapi at the pinned gnostic, where the build stage's CMake looks.
    gnostic = "github.com/google/gnostic/cmd/protoc-gen-openapi@"
    install = re.search(rf"GOBIN=(\S+) go install \"?{re.escape(gnostic)}(\S+?)\"?(\s|$)", go["text"])
    if not install or install.group(2) not in ("${GNOSTIC_VERSION}", "$GNOSTIC_VERSION",
                                                env_value("GNOSTIC_VERSION")):
        failures.append("the Go stage does not go install protoc-gen-openapi at tools/env.sh's GNOSTIC_VERSION")
    elif not any(source == go["name"] and f"{install.group(1)}/protoc-gen-openapi" in paths and
                 destination == "/deps/bin/protoc-gen-openapi" for source, paths, destination in copies(build)):
        failures.append("the build stage does not have protoc-gen-openapi at /deps/bin (HELPLINE_DEPS_DIR/bin)")
    if "-DHELPLINE_DEPS_DIR=/deps" not in build["text"]:
        failures.append("the build stage's CMake does not look in /deps")
    if not re.search(r"cmake --build[^\n]*\bgateway-assets\b", build["text"]):
        failures.append("the build stage does not build gateway-assets (the gateway's protobuf image and OpenAPI)")
    runtime_copies = copies(runtime_stage)
    if not gateway_builds or not any(
            source == go["name"] and paths == [gateway_builds[0]] and
            destination in ("/usr/local/bin/", "/usr/local/bin/helpline-gateway")
            for source, paths, destination in runtime_copies):
        failures.append("the image lacks /usr/local/bin/helpline-gateway from the Go stage")
    for asset in ("helpline.binpb", "openapi.yaml"):
        if not any(source == build["name"] and f"/build/services/gateway/{asset}" in paths and
                   destination in (GATEWAY_SHARE, GATEWAY_SHARE + asset)
                   for source, paths, destination in runtime_copies):
            failures.append(f"the image lacks {GATEWAY_SHARE}{asset} (the chart's gateway config reads it)")
    return failures


if __name__ == "__main__":
    sys.exit(main())
