#!/usr/bin/env python3
"""What buf's PACKAGE rules let through and users of the public files would
notice: a message, enum or service leaving the public file it was released
in (the generated code of analysts, web apps and gRPC clients imports it from
that file).

Public files are every helpline/ file except a package's private ones
(commands.proto, state.proto, keys.proto). Checked against the release image:
- every message, enum and service a public file had is still in it, or is
  one of the types listed in moved_to_private.json and is where it says;
- no public file imports a private one, so nothing public, an event above
  all, can be made of a private message.

usage: public_files_test.py <buf> <release image> <current image>
"""
import json
import os
import subprocess
import sys
import tempfile

PRIVATE = {"commands.proto", "state.proto", "keys.proto"}
MOVED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moved_to_private.json")


def files_of(buf, image):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "image.json")
        subprocess.run([buf, "build", image, "-o", out], check=True)
        with open(out) as f:
            return {f["name"]: f for f in json.load(f)["file"] if f["name"].startswith("helpline/")}


def is_private(name):
    return os.path.basename(name) in PRIVATE


def types_of(file):
    return {t["name"] for kind in ("messageType", "enumType", "service") for t in file.get(kind, [])}


def main():
    buf, release_image, current_image = sys.argv[1:4]
    release = files_of(buf, release_image)
    current = files_of(buf, current_image)
    with open(MOVED) as f:
        moved = json.load(f)["moved"]
    problems = []
    checked = 0
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
        released = types_of(file)
        checked += len(released)
        for type_name in sorted(released - types_of(now)):
            destination = moved.get(name, {}).get(type_name)
            if destination is None:
                problems.append(f"{type_name} left the public {name}")
            elif type_name not in types_of(current.get(destination, {})):
                problems.append(f"{type_name} left {name} and is not in {destination}")
    if checked < 100:
        problems.append(f"only {checked} released public types found: is the image readable?")
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(f"{checked} released types keep their public files")


if __name__ == "__main__":
    main()
