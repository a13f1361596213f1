#!/usr/bin/env python3
"""What an SRE relies on in the alert rules, without a running platform:
every alert links to a section of deploy/runbook.md that exists, every
runbook section of an alert has its alert, every alert has a promtool unit
test (tests/alerts/alerts_test.yaml) and a severity of page or ticket, and
every metric a rule, dashboard or runbook names is registered by the code
(and every recording rule's series they name is recorded)
(alerts_e2e_test.py checks the same names against a running Prometheus)."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metric_names  # noqa: E402

RUNBOOK = os.path.join(metric_names.ROOT, "deploy", "runbook.md")
UNIT_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alerts_test.yaml")
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def anchors(markdown):
    """GitHub's anchors of the headings."""
    found = set()
    for heading in re.findall(r"^#+\s+(.+)$", markdown, re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(anchor)
    return found


def main():
    with open(RUNBOOK) as f:
        runbook = f.read()
    with open(UNIT_TESTS) as f:
        unit_tests = f.read()
    runbook_anchors = anchors(runbook)
    alerts = metric_names.alerts()
    names = {alert["alert"] for alert in alerts}
    check(len(names) >= 10, f"only {len(names)} alerts found in {metric_names.RULES}")
    for alert in alerts:
        name = alert["alert"]
        url = alert.get("annotations", {}).get("runbook_url", "")
        match = re.fullmatch(r"RUNBOOK_BASE/deploy/runbook\.md#([a-z0-9-]+)", url)
        check(match is not None, f"{name}: runbook_url {url!r} is not RUNBOOK_BASE/deploy/runbook.md#<section>")
        if match:
            check(match.group(1) in runbook_anchors, f"{name}: deploy/runbook.md has no section #{match.group(1)}")
        check(alert.get("labels", {}).get("severity") in ("page", "ticket"), f"{name}: severity is not page or ticket")
        check(alert.get("annotations", {}).get("summary"), f"{name}: no summary")
        check(f"alertname: {name}\n" in unit_tests, f"{name}: no promtool test in {UNIT_TESTS}")
    for section in re.findall(r"^###\s+(Helpline\w+)\s*$", runbook, re.MULTILINE):
        check(section in names, f"deploy/runbook.md has a section for {section}, which is no alert")

    recorded = {rule["record"] for group in metric_names.rules() for rule in group["rules"] if "record" in rule}
    for name, where in sorted(metric_names.recorded_names_used().items()):
        check(name in recorded, f"{name} (named in {', '.join(sorted(where))}) is recorded by no rule")

    registered = metric_names.registered()
    referenced = metric_names.referenced()
    check(len(referenced) >= 20, f"only {len(referenced)} metric names found in rules, dashboards and runbooks")
    for name, where in sorted(referenced.items()):
        check(metric_names.exists(name, registered), f"{name} (named in {', '.join(sorted(where))}) is registered by no code")

    for failure in failures:
        print("FAIL:", failure)
    print(f"{len(names)} alerts, {len(referenced)} metric names checked; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
