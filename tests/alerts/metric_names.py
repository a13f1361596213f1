"""The metric names Helpline's alert rules, dashboards and runbook use, and
the names its code registers: what rules_test.py checks statically and
alerts_e2e_test.py checks against a running Prometheus."""
import glob
import json
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "charts", "helpline", "files", "prometheus", "alerts.yaml")
DASHBOARDS = os.path.join(ROOT, "charts", "helpline", "files", "dashboards")
RUNBOOKS = [os.path.join(ROOT, "deploy", "runbook.md"), os.path.join(ROOT, "deploy", "README.md")]

# Ours and gRPC's, plus Prometheus's own `up`. Labels that look like names
# (helpline_service) are not names.
NAME = re.compile(r"\b(?:helpline_[a-z0-9_]*[a-z0-9]|grpc_server_[a-z0-9_]*[a-z0-9]|up)\b(?![:(])")
LABELS = {"helpline_service"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def _names_in_query(query):
    """Metric names in a PromQL expression: label matchers, grouping
    clauses and label_values' label argument removed first."""
    query = re.sub(r"\{[^}]*\}", " ", query)
    query = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", query)
    query = re.sub(r"label_values\(([^,()]*),[^)]*\)", r"\1", query)
    query = re.sub(r'"[^"]*"', " ", query)
    return {name for name in NAME.findall(query) if name not in LABELS}


def rules():
    with open(RULES) as f:
        return yaml.safe_load(f)["groups"]


def alerts():
    return [rule for group in rules() for rule in group["rules"] if "alert" in rule]


def _strings_under(node, keys):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                yield value
            else:
                yield from _strings_under(value, keys)
    elif isinstance(node, list):
        for value in node:
            yield from _strings_under(value, keys)


def referenced():
    """{metric name: set of the files that name it}."""
    found = {}

    def add(names, where):
        for name in names:
            found.setdefault(name, set()).add(os.path.relpath(where, ROOT))

    for group in rules():
        for rule in group["rules"]:
            add(_names_in_query(rule["expr"]), RULES)
    for path in sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))):
        with open(path) as f:
            dashboard = json.load(f)
        for query in _strings_under(dashboard, {"expr", "query"}):
            add(_names_in_query(query), path)
    for path in RUNBOOKS:
        with open(path) as f:
            text = f.read()
        for span in re.findall(r"`([^`\n]+)`", text):
            add(_names_in_query(span), path)
    return found


def recorded_names_used():
    """{recording rule name (helpline:...): files} that dashboards and rules use."""
    found = {}
    sources = [RULES] + sorted(glob.glob(os.path.join(DASHBOARDS, "*.json"))) + RUNBOOKS
    for path in sources:
        with open(path) as f:
            text = f.read()
        if path == RULES:
            text = "\n".join(rule["expr"] for group in rules() for rule in group["rules"])
        for name in re.findall(r"\bhelpline:[a-z0-9_:]+[a-z0-9](?![<a-z0-9_:])", text):
            found.setdefault(name, set()).add(os.path.relpath(path, ROOT))
    return found


def registered():
    """Names the code registers: prometheus-cpp's .Name("..."), Go's Name: "..."."""
    names = {"up"}
    for path in glob.glob(os.path.join(ROOT, "services", "**", "*.cc"), recursive=True) + glob.glob(
        os.path.join(ROOT, "services", "**", "*.go"), recursive=True
    ):
        if path.endswith(("_test.cc", "_test.go")):
            continue
        with open(path) as f:
            names.update(re.findall(r'Name(?:\(|:\s*)"((?:helpline|grpc_server)_[a-z0-9_]+)"', f.read()))
    return names


def exists(name, names):
    """`name` is among `names`, itself or as a histogram's series."""
    if name in names:
        return True
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in names:
            return True
    return False
