#!/usr/bin/env python3
"""deploy/Dockerfile against what this repository knows without a Docker
engine: its build stage installs tools/bootstrap's build packages, and its
runtime stage installs the package of every shared library the built
binaries load (ldd, then dpkg -S), so the image runs what the tests ran.
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


def stage_text(dockerfile, stage_index):
    return re.split(r"^FROM ", dockerfile, flags=re.M)[1:][stage_index]


def stage_packages(dockerfile, stage_index):
    text = stage_text(dockerfile, stage_index).replace("\\\n", " ")
    match = re.search(r"apt-get install -y --no-install-recommends([^&]*)", text)
    return set(match.group(1).split()) if match else set()


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
    missing = bootstrap_build_packages() - stage_packages(dockerfile, 0)
    if missing:
        failures.append(f"the build stage lacks bootstrap's build packages {sorted(missing)}")
    runtime = stage_packages(dockerfile, 1)
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
    if "tools/build-librdkafka" not in stage_text(dockerfile, 0):
        failures.append("the build stage does not build librdkafka with tools/build-librdkafka")
    if any(package.startswith("librdkafka") for package in runtime | stage_packages(dockerfile, 0)):
        failures.append("the image installs bookworm's librdkafka")
    for copied in ("helpline-topics", "topics.json"):
        if copied not in dockerfile:
            failures.append(f"the image lacks {copied} (the chart's topics Job runs it)")
    if "USER 10001" not in dockerfile:
        failures.append("the image does not run as the non-root user 10001 the chart expects")
    return finish(failures)


if __name__ == "__main__":
    sys.exit(main())
