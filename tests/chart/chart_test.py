#!/usr/bin/env python3
"""What an SRE relies on in charts/helpline, for the defaults and every
values file in deploy/values: `helm lint --strict` passes, the chart renders
into objects valid against the Kubernetes schemas (kubernetes-validate,
strict) and configs every service binary takes (--check-config), and in
what it renders every Deployment has probes, requests and limits, runs
non-root on a read-only root filesystem without privilege escalation or
capabilities, its Service targets its gRPC port, its config holds no secret
and every secret it reads is referenced by name, never inlined; the values
schema turns wrong values away, and a refund window longer than the payout
hold is refused."""
import json
import os
import subprocess
import sys
import tempfile

import yaml

from report import finish

HELM = os.environ.get("HELM", "helm")
KUBERNETES_VALIDATE = os.environ.get("KUBERNETES_VALIDATE", "kubernetes-validate")
KUBERNETES_VERSION = "1.29.0"
BUILD_DIR = os.environ.get("BUILD_DIR", "")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART = os.path.join(ROOT, "charts", "helpline")
VALUES_DIR = os.path.join(ROOT, "deploy", "values")
SECRET_WORDS = ("password", "secret", "key_encryption_key", "email_hash_key")
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def helm(*args):
    return subprocess.run([HELM, *args], capture_output=True, text=True)


def render(values_file):
    args = ["template", "hl", CHART, "--kube-version", KUBERNETES_VERSION]
    if values_file:
        args += ["-f", values_file]
    done = helm(*args)
    check(done.returncode == 0, f"{values_file or 'defaults'}: helm template failed: {done.stderr}")
    # Every object against the Kubernetes schemas, offline and strict
    # (unknown fields refused); the ServiceMonitor CRD has no bundled schema.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as rendered:
        rendered.write(done.stdout)
        rendered.flush()
        valid = subprocess.run([KUBERNETES_VALIDATE, "--strict", "--no-warn", "--quiet",
                                "-k", KUBERNETES_VERSION, rendered.name],
                               capture_output=True, text=True)
        check(valid.returncode == 0,
              f"{values_file or 'defaults'}: not valid Kubernetes {KUBERNETES_VERSION}: "
              f"{valid.stdout}{valid.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def secret_names(values):
    names = set()

    def walk(node):
        if isinstance(node, dict):
            if "name" in node and ("key" in node or "keyEncryptionKey" in node):
                names.add(node["name"])
            for child in node.values():
                walk(child)

    walk(values)
    return names


def values_of(values_file):
    with open(os.path.join(CHART, "values.yaml")) as defaults:
        merged = yaml.safe_load(defaults)
    if values_file:
        with open(values_file) as extra:
            overrides = yaml.safe_load(extra)

        def merge(into, other):
            for key, value in other.items():
                if isinstance(value, dict) and isinstance(into.get(key), dict):
                    merge(into[key], value)
                else:
                    into[key] = value

        merge(merged, overrides)
    return merged


def check_config_accepted(deployment, config_text):
    """The service binary takes the rendered config, with its secrets set
    as the Deployment sets them (placeholders here)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    service = container["name"]
    binary = os.path.join(BUILD_DIR, "services", "payments" if service == "psp-sandbox" else service,
                          f"helpline-{service}")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", "placeholder-secret-value")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as config:
        config.write(config_text)
        config.flush()
        done = subprocess.run([binary, "--config", config.name, "--check-config"], env=env,
                              capture_output=True, text=True, timeout=30)
    check(done.returncode == 0,
          f"{deployment['metadata']['name']}: helpline-{service} refuses its config: {done.stderr}")


def check_release(values_file):
    name = os.path.basename(values_file) if values_file else "defaults"
    lint = helm("lint", "--strict", CHART, *(["-f", values_file] if values_file else []))
    check(lint.returncode == 0, f"{name}: helm lint --strict failed: {lint.stdout}{lint.stderr}")
    docs = render(values_file)
    values = values_of(values_file)
    allowed_secrets = secret_names(values)
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    check("Secret" not in by_kind, f"{name}: the chart renders a Secret (secrets are referenced, not inlined)")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    configs = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    policies = {p["metadata"]["name"] for p in by_kind.get("NetworkPolicy", [])}
    check(len(by_kind.get("Deployment", [])) >= 5, f"{name}: fewer than five Deployments")
    for deployment in by_kind.get("Deployment", []):
        dname = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        check(pod_security.get("runAsNonRoot") is True, f"{dname}: not runAsNonRoot")
        check(pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault",
              f"{dname}: seccomp is not RuntimeDefault")
        check(pod.get("automountServiceAccountToken") is False, f"{dname}: mounts a service account token")
        for container in pod["containers"]:
            where = f"{dname}/{container['name']}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                check(probe in container, f"{where}: no {probe}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                check("grpc" in container.get(probe, {}), f"{where}: {probe} is not a gRPC probe")
            check(container.get("livenessProbe", {}).get("grpc", {}).get("service") == "helpline.liveness",
                  f"{where}: liveness does not ask helpline.liveness (readiness would restart it)")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    check(resource in resources.get(kind, {}), f"{where}: no {kind}.{resource}")
            security = container.get("securityContext", {})
            check(security.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem writable")
            check(security.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation allowed")
            check(security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities not all dropped")
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            check("grpc" in ports, f"{where}: no port named grpc")
            service = services.get(dname)
            check(service is not None, f"{dname}: no Service")
            if service:
                grpc = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
                check(grpc and grpc[0]["targetPort"] in ("grpc", ports.get("grpc")),
                      f"{dname}: its Service does not target the gRPC port")
                check(service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items(),
                      f"{dname}: its Service does not select its pods")
            for env in container.get("env", []):
                secretish = any(word in env["name"].lower() for word in ("password", "secret", "_key"))
                if secretish:
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    check(ref is not None and "value" not in env, f"{where}: {env['name']} is not from a Secret")
                    check(ref is None or ref["name"] in allowed_secrets,
                          f"{where}: {env['name']} reads a Secret the values do not name")
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                check(volume["secret"]["secretName"] in allowed_secrets,
                      f"{dname}: volume {volume['name']} mounts a Secret the values do not name")
        config = configs.get(dname)
        check(config is not None, f"{dname}: no ConfigMap")
        if config:
            text = config["data"]["config.json"]
            parsed = json.loads(text)

            def keys(node, prefix=""):
                if isinstance(node, dict):
                    for key, value in node.items():
                        yield from keys(value, f"{prefix}{key}.")
                else:
                    yield prefix.rstrip(".")

            for key in keys(parsed):
                check(not any(word in key for word in SECRET_WORDS), f"{dname}: config holds {key}")
        check(dname in policies, f"{dname}: no NetworkPolicy")
        if config and BUILD_DIR:
            check_config_accepted(deployment, config["data"]["config.json"])
    jobs = by_kind.get("Job", [])
    check(any(j["metadata"].get("annotations", {}).get("helm.sh/hook") == "pre-install,pre-upgrade"
              for j in jobs), f"{name}: no pre-install/pre-upgrade topics Job")
    return by_kind, values


def main():
    files = [None] + sorted(os.path.join(VALUES_DIR, f) for f in os.listdir(VALUES_DIR) if f.endswith(".yaml"))
    for values_file in files:
        by_kind, values = check_release(values_file)
        name = os.path.basename(values_file) if values_file else "defaults"
        if name == "production.yaml":
            check(len(by_kind.get("PodDisruptionBudget", [])) == len(by_kind.get("Deployment", [])),
                  "production: not every Deployment has a PodDisruptionBudget")
            check(all(p["spec"]["minAvailable"] >= 2 for p in by_kind.get("PodDisruptionBudget", [])),
                  "production: a PodDisruptionBudget lets more than one of three go")
            check(all(h["spec"]["minReplicas"] >= 3 for h in by_kind.get("HorizontalPodAutoscaler", [])) and
                  len(by_kind.get("HorizontalPodAutoscaler", [])) == len(by_kind.get("Deployment", [])),
                  "production: not every service autoscales from three replicas")
    # The schema turns wrong values away, naming them.
    for setting, field in (("kafka.securityProtocol=tcp", "securityProtocol"),
                           ("securityContext.readOnlyRootFilesystem=false", "readOnlyRootFilesystem"),
                           ("kafka.topics.partitions=0", "partitions"),
                           ("services.identity.replicas=zero", "replicas"),
                           ("unknownKey=1", "unknownKey")):
        lint = helm("lint", "--strict", CHART, "--set", setting)
        check(lint.returncode != 0 and field in (lint.stdout + lint.stderr),
              f"the schema accepted {setting}")
    # Sessions bills from LiveKit: its webhook port on the pods, the Service
    # and the NetworkPolicy, its API reachable, its key and secret from the
    # Secret; with connections from the apps, no webhook port at all.
    docs = render(None)
    sessions = [d for d in docs if d["metadata"]["name"].endswith("-sessions")]
    by_kind = {d["kind"]: d for d in sessions}
    config = json.loads(by_kind["ConfigMap"]["data"]["config.json"])["sessions"]
    check(config.get("connections_from") == "media_server" and
          config.get("webhook_listen") == "0.0.0.0:8088" and
          config.get("livekit_api_url", "").startswith("https://"),
          f"sessions' config does not bill from LiveKit: {config}")
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    check({"name": "webhook", "containerPort": 8088} in container["ports"],
          "the sessions pods have no webhook port")
    env = {e["name"]: e for e in container["env"]}
    check(all(env.get(v, {}).get("valueFrom", {}).get("secretKeyRef")
              for v in ("HELPLINE_SESSIONS_LIVEKIT_API_KEY", "HELPLINE_SESSIONS_LIVEKIT_API_SECRET")),
          "LiveKit's key and secret are not read from the Secret")
    check(any(p["name"] == "webhook" and p["targetPort"] == "webhook"
              for p in by_kind["Service"]["spec"]["ports"]), "the sessions Service has no webhook port")
    policy = by_kind["NetworkPolicy"]["spec"]
    check(any(port.get("port") == "webhook" for rule in policy["ingress"] for port in rule.get("ports", [])),
          "the NetworkPolicy keeps LiveKit's webhooks out")
    check(any(port.get("port") == 443 for rule in policy["egress"] for port in rule.get("ports", [])),
          "the NetworkPolicy keeps sessions from LiveKit's API")
    apps = helm("template", "hl", CHART, "--kube-version", KUBERNETES_VERSION,
                "--set", "livekit.connectionsFrom=apps")
    check(apps.returncode == 0 and "name: webhook" not in apps.stdout and "webhook_listen" not in apps.stdout,
          "with connections from the apps a webhook port is still open")
    # A refund window longer than the payout hold is refused: a refund could
    # find the expert's money paid out.
    longer = helm("template", "hl", CHART, "--kube-version", KUBERNETES_VERSION,
                  "--set", "services.sessions.config.sessions.refund_window=96h")
    check(longer.returncode != 0 and "refund_window" in longer.stderr,
          "a sessions refund window longer than the payout hold was rendered")
    shorter = helm("template", "hl", CHART, "--kube-version", KUBERNETES_VERSION,
                   "--set", "services.sessions.config.sessions.refund_window=1h30m",
                   "--set", "services.payments.config.payments.refund_window=2h")
    check(shorter.returncode == 0, f"a refund window inside the payout hold was refused: {shorter.stderr}")
    return finish(failures)


if __name__ == "__main__":
    sys.exit(main())
