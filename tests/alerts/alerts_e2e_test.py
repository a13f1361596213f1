#!/usr/bin/env python3
"""The alerts as an SRE meets them: the local stack with its Prometheus
(deploy/local/stack with LiveKit, deploy/local/services: the five services,
the sandbox processor and the gateway) under helpline-load; every metric the rules,
dashboards and runbook name is scraped; no page fires while all is well;
then payments is frozen (SIGSTOP) and matching killed, and through
Prometheus's HTTP API HelplineServiceDown fires for both, with a runbook
link that opens; after payments is thawed and matching started again, both
resolve. With the load stopped, every reader's lag falls to zero. Prints how long
each alert took to fire and to resolve."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metric_names  # noqa: E402

ROOT = metric_names.ROOT
BUILD = os.environ.get("HL_BUILD_DIR", os.path.join(ROOT, "build"))
STACK = os.path.join(BUILD, "alerts-stack")
FAULTED = ("payments", "matching")
failures = []


def say(*words):
    print(time.strftime("%H:%M:%S"), *words, flush=True)


def check(condition, what):
    if not condition:
        failures.append(what)
        say("FAIL:", what)
    return condition


def free_base(span):
    """A port P with P+1 .. P+span free on 127.0.0.1."""
    for _ in range(200):
        base = random.randint(20000, 60000 - span)
        try:
            held = []
            for port in range(base + 1, base + span + 1):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            pass
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free ports")


GRPC_BASE, METRICS_BASE, GATEWAY_BASE = free_base(7), free_base(8), free_base(3)
ENV = dict(
    os.environ,
    HL_STACK_DIR=STACK,
    HL_KAFKA_PORT="0",
    HL_REDIS_PORT="0",
    HL_PROMETHEUS_PORT="0",
    HL_LIVEKIT_PORT="0",
    HL_SESSIONS_WEBHOOK_PORT="0",
    HL_GRPC_PORT_BASE=str(GRPC_BASE),
    HL_METRICS_PORT_BASE=str(METRICS_BASE),
    HL_GATEWAY_PORT=str(GATEWAY_BASE + 1),
    HL_CLOCK_RATE="1",
    # The load's few people make many calls.
    HELPLINE_IDENTITY_LOGINS_PER_MINUTE_PER_ACCOUNT="100000",
    HELPLINE_IDENTITY_REQUESTS_PER_SECOND_PER_CALLER="100000",
    HELPLINE_CATALOG_REQUESTS_PER_SECOND_PER_CALLER="100000",
    HELPLINE_MATCHING_REQUESTS_PER_SECOND_PER_CALLER="100000",
    HELPLINE_SESSIONS_REQUESTS_PER_SECOND_PER_CALLER="100000",
    HELPLINE_PAYMENTS_REQUESTS_PER_SECOND_PER_CALLER="100000",
)


def run(*command):
    done = subprocess.run(command, env=ENV, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def stack_value(key):
    with open(os.path.join(STACK, "stack.env")) as f:
        for line in f:
            if line.startswith(key + "="):
                return line.strip().split("=", 1)[1]
    raise RuntimeError(f"no {key} in stack.env")


def service_pid(name):
    with open(os.path.join(STACK, "services", f"{name}.pid")) as f:
        return int(f.read().strip())


class Prometheus:
    def __init__(self, url):
        self.url = url

    def get(self, path, **params):
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as answer:
            body = json.load(answer)
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def value(self, query):
        result = self.get("/api/v1/query", query=query)["result"]
        return float(result[0]["value"][1]) if result else None

    def alerts(self):
        return self.get("/api/v1/alerts")["alerts"]


def wait_for(what, condition, timeout, every=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, RuntimeError, ValueError):
            value = None
        if value:
            return value
        time.sleep(every)
    check(False, f"{what}: not within {timeout} s")
    return None


def service_down_alerts(prometheus):
    """{service: alert} of HelplineServiceDown alerts, pending or firing."""
    return {
        alert["labels"].get("helpline_service"): alert
        for alert in prometheus.alerts()
        if alert["labels"].get("alertname") == "HelplineServiceDown"
    }


def check_metric_names(prometheus):
    scraped = set(prometheus.get("/api/v1/label/__name__/values"))
    families = set(prometheus.get("/api/v1/metadata"))
    exported = scraped | families
    referenced = metric_names.referenced()
    missing = {name: where for name, where in referenced.items() if not metric_names.exists(name, exported)}
    for name, where in sorted(missing.items()):
        check(False, f"{name} (named in {', '.join(sorted(where))}) is exported by no running service")
    say(f"{len(referenced) - len(missing)} of {len(referenced)} metric names the rules, dashboards and runbook use are scraped")


def call_the_gateway():
    """A browser's calls go through the gateway (the load calls the services
    directly): a REST read without a token, refused as a browser would see it."""
    url = f"http://127.0.0.1:{GATEWAY_BASE + 1}/v1/categories"
    for _ in range(3):
        try:
            urllib.request.urlopen(url, timeout=5)
        except urllib.error.HTTPError as refused:
            check(refused.code == 401, f"GET {url} without a token: {refused.code}, not 401")


def check_runbook_link(alert):
    url = alert["annotations"].get("runbook_url", "")
    path, _, anchor = url.removeprefix("file://").partition("#")
    if check(os.path.isfile(path), f"runbook link {url} does not open a file"):
        with open(path) as f:
            check(f"\n### {alert['labels']['alertname']}\n" in f.read() and anchor == alert["labels"]["alertname"].lower(),
                  f"runbook link {url} has no section for {alert['labels']['alertname']}")


class OutOfTime(Exception):
    pass


def main():
    run("deploy/local/services", "stop")
    run("deploy/local/stack", "stop")
    load = starting = None
    # Out of time (before CTest's 900 s kill): clean up all the same.
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(OutOfTime()))
    signal.alarm(840)
    try:
        say("starting the stack with Prometheus in", STACK)
        run("deploy/local/stack", "start", "--fresh")
        run("deploy/local/stack", "topics")
        run("deploy/local/services", "start")
        prometheus = Prometheus(stack_value("PROMETHEUS_URL"))
        say("Prometheus at", prometheus.url)
        targets = wait_for(
            "every target up",
            lambda: (lambda up: up if len(up) >= 7 and all(t["health"] == "up" for t in up) else None)(
                [t for t in prometheus.get("/api/v1/targets")["activeTargets"] if t["labels"].get("job") == "helpline"]
            ),
            60,
        )
        if not targets:
            return 1
        rules = {rule["name"] for group in prometheus.get("/api/v1/rules")["groups"] for rule in group["rules"]}
        check({alert["alert"] for alert in metric_names.alerts()} <= rules, "Prometheus did not load every alert of the chart's rules")

        load_log = open(os.path.join(STACK, "load.log"), "w")
        load = subprocess.Popen(
            [os.path.join(BUILD, "tools", "helpline-load"), "--base-port", str(GRPC_BASE),
             "--metrics-base-port", str(METRICS_BASE),
             "--admin-password-file", os.path.join(STACK, "secrets", "admin-password"),
             "--people", "4", "--experts", "4", "--duration", "20m", "--tag", f"alerts-{random.randrange(10**6)}"],
            env=ENV, cwd=ROOT, stdout=load_log, stderr=subprocess.STDOUT)
        say("load running; waiting for journeys to reach payments")
        # The load connects no media: with LiveKit its calls bill nothing, so
        # authorisations (at the match) are what reaches the processor.
        wait_for(
            "authorisations approved under the load",
            lambda: (prometheus.value('sum(helpline_payments_processor_calls_total{kind="authorise",result="approved"})') or 0) > 0,
            180, every=2)
        call_the_gateway()
        time.sleep(10)
        check_metric_names(prometheus)
        pages = [a["labels"] for a in prometheus.alerts()
                 if a["labels"].get("severity") == "page" and a["state"] == "firing"]
        check(not pages, f"pages while all is well: {pages}")

        say("freezing payments (SIGSTOP) and killing matching (SIGKILL)")
        frozen = service_pid("payments")
        faulted_at = time.monotonic()
        os.kill(frozen, signal.SIGSTOP)
        os.kill(service_pid("matching"), signal.SIGKILL)
        fired = {}
        deadline = faulted_at + 240
        while time.monotonic() < deadline and len(fired) < len(FAULTED):
            for service, alert in service_down_alerts(prometheus).items():
                if service in FAULTED and alert["state"] == "firing" and service not in fired:
                    fired[service] = time.monotonic() - faulted_at
                    say(f"HelplineServiceDown{{helpline_service=\"{service}\"}} firing after {fired[service]:.0f} s")
                    check_runbook_link(alert)
            time.sleep(1)
        for service in FAULTED:
            check(service in fired, f"HelplineServiceDown for {service} did not fire within 240 s")
        others = sorted(a["labels"]["helpline_service"] for a in prometheus.alerts()
                        if a["labels"].get("alertname") == "HelplineServiceDown" and a["labels"].get("helpline_service") not in FAULTED)
        check(not others, f"HelplineServiceDown for services that were not faulted: {others}")

        say("thawing payments and starting matching again")
        recovered_at = time.monotonic()
        os.kill(frozen, signal.SIGCONT)
        starting = subprocess.Popen(["deploy/local/services", "start"], env=ENV, cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        resolved = {}
        deadline = recovered_at + 180
        while time.monotonic() < deadline and len(resolved) < len(FAULTED):
            down = service_down_alerts(prometheus)
            for service in FAULTED:
                if service not in down and service not in resolved:
                    resolved[service] = time.monotonic() - recovered_at
                    say(f"HelplineServiceDown{{helpline_service=\"{service}\"}} resolved after {resolved[service]:.0f} s")
            time.sleep(1)
        output, _ = starting.communicate()
        check(starting.returncode == 0, f"deploy/local/services start failed:\n{output}")
        for service in FAULTED:
            check(service in resolved, f"HelplineServiceDown for {service} did not resolve within 180 s")
        # With the load stopped, every reader catches up: no lag, no page
        # (transaction markers and partitions nobody writes count as read).
        load.kill()
        load.wait()
        say("load stopped; waiting for every reader to catch up")
        behind = 'helpline_consumer_lag_records > 0 or helpline_processor_commands_lag > 0'
        if not wait_for("every reader caught up, its lag zero",
                        lambda: prometheus.get("/api/v1/query", query=behind)["result"] == [], 90, every=2):
            for result in prometheus.get("/api/v1/query", query=behind)["result"]:
                say("still behind:", result["metric"], result["value"][1])
        print("alerts: " + " ".join(
            f"{service}_fired_s={fired.get(service, -1):.0f} {service}_resolved_s={resolved.get(service, -1):.0f}"
            for service in FAULTED), flush=True)
    except OutOfTime:
        check(False, "the test ran out of time (840 s)")
    finally:
        signal.alarm(0)
        if starting is not None and starting.poll() is None:
            starting.kill()
            starting.wait()
        if load is not None:
            load.kill()
            load.wait()
        for name in FAULTED:
            try:
                os.kill(service_pid(name), signal.SIGCONT)
            except (OSError, ValueError):
                pass
        subprocess.run(["deploy/local/services", "stop"], env=ENV, cwd=ROOT, capture_output=True)
        subprocess.run(["deploy/local/stack", "stop"], env=ENV, cwd=ROOT, capture_output=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
