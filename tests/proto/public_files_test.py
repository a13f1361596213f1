#!/usr/bin/env python3
"""What buf's PACKAGE rules let through and users of the public files would
notice: a message or enum leaving the public file it was released in (the
generated code of analysts and web apps imports it from that file).

Public files are every helpline/ file except a package's private ones
(commands.proto, state.proto, keys.proto). Checked against the release image:
- every message and enum a public file had is still in it, or moved to a
  private file of its package (the processor's commands and state did);
- no public file imports a private one, so nothing public, an event above
  all, can be made of (or moved into) a private file.

usage: public_files_test.py <buf> <release image> <current image>
"""
import json
import os
import subprocess
import sys
import tempfile

PRIVATE = {"commands.proto", "state.proto", "keys.proto"}


def files_of(buf, image):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "image.json")
        subprocess.run([buf, "build", image, "-o", out], check=True)
        with open(out) as f:
            return {f["name"]: f for f in json.load(f)["file"] if f["name"].startswith("helpline/")}


def is_private(name):
    return os.path.basename(name) in PRIVATE


def types_of(file):
    return {m["name"] for m in file.get("messageType", [])} | {
        e["name"] for e in file.get("enumType", [])}


def main():
    buf, release_image, current_image = sys.argv[1:4]
    release = files_of(buf, release_image)
    current = files_of(buf, current_image)
    problems = []
    for name, file in current.items():
        if is_private(name):
            continue
        for imported in file.get("dependency", []):
            if is_private(imported):
                problems.append(f"{name} imports the private {imported}")
    for name, file in release.items():
        if is_private(name):
            continue
        now = current.get(name)
        if now is None:
            problems.append(f"{name} was released and is gone")
            continue
        still_here = types_of(now)
        moved_to_private = set()
        for other_name, other in current.items():
            if is_private(other_name) and other.get("package") == file.get("package"):
                moved_to_private |= types_of(other)
        for type_name in sorted(types_of(file) - still_here):
            if type_name not in moved_to_private:
                problems.append(f"{type_name} left the public {name}")
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"{sum(not is_private(n) for n in current)} public files keep what they released")


if __name__ == "__main__":
    main()
