#!/usr/bin/env python3
"""What an SRE relies on in charts/helpline, for the defaults and every
values file in deploy/values: `helm lint --strict` passes, the chart renders
into objects valid against the Kubernetes schemas (kubernetes-validate,
strict) and configs every binary takes (--check-config), and in what it
renders every Deployment has probes, requests and limits, runs non-root on a
read-only root filesystem without privilege escalation or capabilities, its
Service targets its gRPC (the gateway: HTTP) port, its config holds no
secret and every secret it reads is referenced by name, never inlined; the
gateway is alive on /healthz and ready on /readyz, calls every service at a
Service that exists, may reach their gRPC and nothing else while they admit
it, is scraped, and has its Ingress only when enabled, with timeouts that
let streams live; the values schema turns wrong values away, and a refund
window longer than the payout hold, an ingress that would cut streams, and a
gateway without its services are refused; production's Kafka is SASL_SSL
with a user and password Secret of each service's own, and the topics Job
creates the ACLs as the admin principal; when enabled, each Grafana dashboard
in files/dashboards is a ConfigMap the sidecar loads (valid JSON, a uid and
title of its own, every panel on the ${datasource} variable) and the
PrometheusRule carries files/prometheus/alerts.yaml as it is but for the
runbook base, every alert with a severity and a runbook link, on targets the
ServiceMonitor labels with helpline_service and the job the rules select;
neither renders by default."""
import copy
import json
import os
import re
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
DASHBOARDS_DIR = os.path.join(CHART, "files", "dashboards")
RULES_FILE = os.path.join(CHART, "files", "prometheus", "alerts.yaml")
PROMTOOL = os.environ.get("PROMTOOL", "promtool")
SECRET_WORDS = ("password", "secret", "key_encryption_key", "email_hash_key")
SERVICES = ("identity", "catalog", "matching", "sessions", "payments")
# Where deploy/Dockerfile puts the gateway's schema files (dockerfile_test.py
# checks that side).
GATEWAY_SHARE = "/usr/local/share/helpline"
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
    # One Secret, a key per component (catalog, matching, sessions).
    names.add(values["secrets"]["personalKeys"]["name"])
    if values.get("tls", {}).get("enabled"):
        names.update(f"{values['tls']['secretName']}-{component}"
                     for component in (*SERVICES, "gateway", "psp-sandbox"))
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


def seconds(duration):
    """A Go duration ("10m", "1m30s", "500ms") in seconds."""
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(number) * scale[unit]
               for number, unit in re.findall(r"([0-9.]+)(ms|h|m|s)", str(duration)))


def quantity(text):
    """A Kubernetes memory quantity ("256Mi", "1G", "1048576") in bytes."""
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text)).groups()
    scale = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return int(float(number) * scale[unit])


def nginx_bytes(text):
    number, unit = re.fullmatch(r"([0-9]+)([kKmMgG]?)", str(text)).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit.lower()]


def selects(selector, labels):
    """Whether a label selector (matchLabels, matchExpressions) selects labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, values = expression["key"], expression.get("values", [])
        held = {"In": key in labels and labels[key] in values,
                "NotIn": key not in labels or labels[key] not in values,
                "Exists": key in labels,
                "DoesNotExist": key not in labels}[expression["operator"]]
        if not held:
            return False
    return True


def admits_from_release(policy, labels, ports):
    """Whether a NetworkPolicy lets a pod of the same namespace with these
    labels in to one of these ports (names or numbers)."""
    for rule in policy["spec"].get("ingress", []):
        peers = rule.get("from")
        from_pod = peers is None or any(
            "podSelector" in peer and "ipBlock" not in peer and
            ("namespaceSelector" not in peer or peer["namespaceSelector"] == {}) and
            selects(peer["podSelector"], labels) for peer in peers)
        to_port = "ports" not in rule or any(p.get("port") in ports for p in rule["ports"])
        if from_pod and to_port:
            return True
    return False


def lets_out_to(policy, labels, ports):
    """Whether a NetworkPolicy lets its pods out to a pod of the same
    namespace with these labels on one of these ports."""
    for rule in policy["spec"].get("egress", []):
        peers = rule.get("to")
        to_pod = peers is None or any(
            "podSelector" in peer and "namespaceSelector" not in peer and
            selects(peer["podSelector"], labels) for peer in peers)
        to_port = "ports" not in rule or any(p.get("port") in ports for p in rule["ports"])
        if to_pod and to_port:
            return True
    return False


def check_config_accepted(deployment, config_text):
    """The binary takes the rendered config, with its secrets set as the
    Deployment sets them (placeholders here)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    service = container["name"]
    binary = os.path.join(BUILD_DIR, "services", "payments" if service == "psp-sandbox" else service,
                          f"helpline-{service}")
    if not os.path.exists(binary):
        check(False, f"{deployment['metadata']['name']}: cannot check its config: {binary} is not built")
        return
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for variable in container.get("env", []):
        field = variable.get("valueFrom", {}).get("resourceFieldRef")
        if field:  # limits.memory (GOMEMLIMIT)
            limit = container["resources"]["limits"][field["resource"].split(".")[1]]
            env[variable["name"]] = str(quantity(limit))
        else:
            env[variable["name"]] = variable.get("value", "placeholder-secret-value")
    if service == "gateway":
        # The image has them in GATEWAY_SHARE, the build beside the binary.
        env["HELPLINE_GATEWAY_DESCRIPTOR_SET"] = os.path.join(os.path.dirname(binary), "helpline.binpb")
        env["HELPLINE_GATEWAY_OPENAPI_FILE"] = os.path.join(os.path.dirname(binary), "openapi.yaml")
        if "backend_tls" in json.loads(config_text).get("gateway", {}):
            # The pod's certificate, which the gateway reads at start: one made here.
            for name, path in test_certificate().items():
                env[f"HELPLINE_GATEWAY_BACKEND_TLS_{name.upper()}_FILE"] = path
    with tempfile.NamedTemporaryFile("w", suffix=".json") as config:
        config.write(config_text)
        config.flush()
        done = subprocess.run([binary, "--config", config.name, "--check-config"], env=env,
                              capture_output=True, text=True, timeout=30)
    check(done.returncode == 0,
          f"{deployment['metadata']['name']}: helpline-{service} refuses its config: {done.stderr}")


_certificate = {}


def test_certificate():
    """A self-signed certificate and key (PEM files), made once with openssl."""
    if not _certificate:
        folder = tempfile.mkdtemp(prefix="chart-test-tls-")
        cert, key = os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key")
        done = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                               "-nodes", "-days", "1", "-subj", "/CN=chart-test", "-keyout", key, "-out", cert],
                              capture_output=True, text=True)
        check(done.returncode == 0, f"openssl could not make a test certificate: {done.stderr}")
        _certificate.update({"ca": cert, "cert": cert, "key": key})
    return _certificate


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
            gateway = container["name"] == "gateway"
            # The gateway's probes are HTTP (check_gateway); it starts at once.
            for probe in ("readinessProbe", "livenessProbe") if gateway else \
                    ("startupProbe", "readinessProbe", "livenessProbe"):
                check(probe in container, f"{where}: no {probe}")
                if not gateway:
                    check("grpc" in container.get(probe, {}), f"{where}: {probe} is not a gRPC probe")
            if not gateway:
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
            serving = "http" if gateway else "grpc"
            check(serving in ports, f"{where}: no port named {serving}")
            service = services.get(dname)
            check(service is not None, f"{dname}: no Service")
            if service:
                served = [p for p in service["spec"]["ports"] if p["name"] == serving]
                check(served and served[0]["targetPort"] in (serving, ports.get(serving)),
                      f"{dname}: its Service does not target the {serving} port")
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
            if "grpc" in parsed:
                check(parsed["grpc"].get("reflection") is values.get("grpcReflection", False),
                      f"{dname}: grpc.reflection does not follow grpcReflection (off by default)")
        check(dname in policies, f"{dname}: no NetworkPolicy")
        if config and BUILD_DIR:
            check_config_accepted(deployment, config["data"]["config.json"])
    jobs = by_kind.get("Job", [])
    for job in jobs:
        for container in job["spec"]["template"]["spec"]["containers"]:
            line = " ".join(container.get("command", []) + container.get("args", []))
            check("password" not in line.lower(),
                  f"{job['metadata']['name']}: a password on the command line, where the node can read it")
    check(any(j["metadata"].get("annotations", {}).get("helm.sh/hook") == "pre-install,pre-upgrade"
              for j in jobs), f"{name}: no pre-install/pre-upgrade topics Job")
    check_gateway(name, by_kind, values)
    return by_kind, values


def check_gateway(name, by_kind, values):
    """The gateway as deployed: its probes, Service, config, NetworkPolicy
    (and the services'), metrics scrape and Ingress; none of it when
    disabled."""
    gateway_values = values["gateway"]
    objects = [d for docs in by_kind.values() for d in docs if d["metadata"]["name"] == "hl-helpline-gateway"]
    if not gateway_values["enabled"]:
        check(not objects, f"{name}: the gateway is disabled but {sorted(d['kind'] for d in objects)} render")
        return
    one = {d["kind"]: d for d in objects}
    deployment, service = one.get("Deployment"), one.get("Service")
    config_map, policy = one.get("ConfigMap"), one.get("NetworkPolicy")
    for kind, found in (("Deployment", deployment), ("Service", service), ("ConfigMap", config_map)):
        check(found is not None, f"{name}: no gateway {kind}")
    if not (deployment and service and config_map):
        return
    port = gateway_values["port"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    pod_labels = pod["metadata"]["labels"]
    where = f"{name}: the gateway"
    check(container["command"] == ["/usr/local/bin/helpline-gateway"], f"{where} runs {container['command']}")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check(ports == {"http": port, "metrics": values["metricsPort"]}, f"{where}'s ports are {ports}")
    # Alive while the process answers; ready while it takes calls.
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = container.get(probe, {}).get("httpGet", {})
        check(http.get("path") == path and http.get("port") in ("http", port),
              f"{where}'s {probe} does not ask {path} on its port: {http}")
    # It holds no secret: no Kafka password, no keys; only the release's
    # TLS certificate, to call the services with.
    tls_secret = f"{values['tls']['secretName']}-gateway" if values["tls"]["enabled"] else None
    check(not any("secretKeyRef" in e.get("valueFrom", {}) for e in container.get("env", [])) and
          not any("secret" in v and v["secret"]["secretName"] != tls_secret
                  for v in pod["spec"].get("volumes", [])), f"{where} reads a Secret")
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    check(service["spec"].get("type", "ClusterIP") == "ClusterIP", f"{where}'s Service is not ClusterIP")
    check(service_ports.get("http", {}).get("port") == port, f"{where}'s Service does not serve port {port}")
    check("metrics" in service_ports, f"{where}'s Service has no metrics port to scrape")
    check(selects({"matchLabels": service["spec"]["selector"]}, pod_labels), f"{where}'s Service misses its pods")

    # Its config: the ports, the five services at Services that exist, the
    # origins and limits from the values, the schema files where the image has them.
    config = json.loads(config_map["data"]["config.json"])
    own = config.get("gateway", {})
    check(set(config) == {"gateway", "metrics", "log", "tls"}, f"{where}'s config has sections {sorted(config)}")
    check(own.get("listen") == f"0.0.0.0:{port}", f"{where} listens on {own.get('listen')}")
    check(config.get("metrics", {}).get("listen") == f"0.0.0.0:{values['metricsPort']}",
          f"{where}'s metrics are not on metricsPort")
    check(own.get("cors_origins") == ",".join(gateway_values["corsOrigins"]),
          f"{where} allows the origins {own.get('cors_origins')!r}, not {gateway_values['corsOrigins']}")
    check(own.get("max_request_bytes") == gateway_values["maxRequestBytes"] and
          own.get("unary_timeout") == gateway_values["unaryTimeout"] and
          own.get("stream_timeout") == gateway_values["streamTimeout"] and
          own.get("anonymous_calls_per_minute_per_client") == gateway_values["anonymousCallsPerMinutePerClient"],
          f"{where}'s limits are not the values': {own}")
    # The per-client limit at the edge names clients only through proxies the values trust.
    check(own.get("trusted_proxies") == ",".join(gateway_values["trustedProxies"]),
          f"{where} trusts the proxies {own.get('trusted_proxies')!r}, not {gateway_values['trustedProxies']}")
    check(own.get("descriptor_set") == f"{GATEWAY_SHARE}/helpline.binpb" and
          own.get("openapi_file") == f"{GATEWAY_SHARE}/openapi.yaml",
          f"{where} looks for its schema files where the image has none: {own}")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    policies = {p["metadata"]["name"]: p for p in by_kind.get("NetworkPolicy", [])}
    for backend in SERVICES:
        target = own.get(f"{backend}_target", "")
        host, _, target_port = target.rpartition(":")
        grpc = [p for p in services.get(host, {}).get("spec", {}).get("ports", []) if p["name"] == "grpc"]
        check(host == f"hl-helpline-{backend}" and grpc and str(grpc[0]["port"]) == target_port,
              f"{where} calls {backend} at {target!r}, which is no gRPC port of its Service")
        backend_pods = deployments.get(f"hl-helpline-{backend}", {}).get("spec", {}).get("template", {})
        backend_labels = backend_pods.get("metadata", {}).get("labels", {})
        # ... which the NetworkPolicies let it reach: out of its pods, into theirs.
        if values["networkPolicy"]["enabled"] and policy:
            check(lets_out_to(policy, backend_labels, (values["grpcPort"], "grpc")),
                  f"{where}'s NetworkPolicy keeps it from {backend}'s gRPC")
            theirs = policies.get(f"hl-helpline-{backend}")
            check(theirs and admits_from_release(theirs, pod_labels, ("grpc", values["grpcPort"])),
                  f"{name}: {backend}'s NetworkPolicy keeps the gateway out")
    if values["networkPolicy"]["enabled"]:
        check(policy is not None, f"{where} has no NetworkPolicy")
    if values["networkPolicy"]["enabled"] and policy:
        spec = policy["spec"]
        check(selects(spec["podSelector"], pod_labels), f"{where}'s NetworkPolicy selects other pods")
        check(any(rule.get("from") == gateway_values["clientsFrom"] and
                  [p["port"] for p in rule.get("ports", [])] in (["http"], [port]) for rule in spec["ingress"]),
              f"{where}'s NetworkPolicy does not let gateway.clientsFrom in to its port")
        check(any([p["port"] for p in rule.get("ports", [])] == ["metrics"] for rule in spec["ingress"]),
              f"{where}'s NetworkPolicy keeps Prometheus out")
        check(not any("ipBlock" in peer for rule in spec["egress"] for peer in rule.get("to", [])),
              f"{where}'s NetworkPolicy lets it out of the cluster (it needs no Kafka, Redis or anything else)")
        check(not lets_out_to(policy, {**pod_labels, "app.kubernetes.io/name": "psp-sandbox"},
                              (values["grpcPort"], "grpc")),
              f"{where}'s NetworkPolicy lets it reach more than the five services")
    for monitor in by_kind.get("ServiceMonitor", []):
        check(selects(monitor["spec"]["selector"], service["metadata"]["labels"]) and
              any(e["port"] in service_ports for e in monitor["spec"]["endpoints"]),
              f"{name}: the ServiceMonitor does not scrape the gateway")

    # The Ingress only when enabled: to the gateway's port, TLS, and nginx
    # waiting longer than a stream may be quiet, passing messages unbuffered,
    # letting the gateway refuse oversized calls itself.
    ingresses = by_kind.get("Ingress", [])
    ingress = gateway_values["ingress"]
    check(len(ingresses) == (1 if ingress["enabled"] else 0),
          f"{name}: {len(ingresses)} Ingresses with gateway.ingress.enabled {ingress['enabled']}")
    for rendered in ingresses:
        spec = rendered["spec"]
        check(sorted(rule["host"] for rule in spec["rules"]) == sorted(ingress["hosts"]),
              f"{name}: the Ingress serves other hosts than gateway.ingress.hosts")
        backends = [path["backend"]["service"] for rule in spec["rules"] for path in rule["http"]["paths"]]
        check(backends and all(b["name"] == service["metadata"]["name"] and
                               b["port"].get("name", b["port"].get("number")) in ("http", port) for b in backends),
              f"{name}: the Ingress does not lead to the gateway's port: {backends}")
        if ingress.get("tlsSecretName"):
            check([t["secretName"] for t in spec.get("tls", [])] == [ingress["tlsSecretName"]],
                  f"{name}: the Ingress has no TLS from {ingress['tlsSecretName']}")
        annotations = rendered["metadata"].get("annotations", {})
        if ingress.get("className") == "nginx":
            read = annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")
            check(float(read) >= seconds(gateway_values["streamTimeout"]),
                  f"{name}: nginx gives up on a quiet stream after {read} s, before the gateway's "
                  f"{gateway_values['streamTimeout']}")
            check(annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off",
                  f"{name}: nginx buffers the streams' messages")
            body = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size", "1m")
            check(nginx_bytes(body) >= gateway_values["maxRequestBytes"],
                  f"{name}: nginx refuses bodies over {body}, before the gateway's own limit")


def check_production_refuses(cases):
    """Production's values with each case's settings do not render, and the
    error says the case's words."""
    production = os.path.join(VALUES_DIR, "production.yaml")
    for settings, words in cases:
        args = ["template", "hl", CHART, "--kube-version", KUBERNETES_VERSION, "-f", production]
        for setting in settings:
            args += ["--set", setting]
        done = helm(*args)
        check(done.returncode != 0 and words in done.stderr, f"production with {settings} was rendered")


def check_kafka_principals(by_kind, values):
    """Production's Kafka: SASL_SSL, each service its own user and password
    Secret, the topics Job as the admin principal creating every ACL."""
    kafka = values["kafka"]
    check(kafka["securityProtocol"] == "sasl_ssl", "production: Kafka is not SASL_SSL")
    users, secrets = {}, {}
    configs = {c["metadata"]["name"]: json.loads(c["data"]["config.json"])
               for c in by_kind.get("ConfigMap", []) if "config.json" in c["data"]}
    for deployment in by_kind.get("Deployment", []):
        dname = deployment["metadata"]["name"]
        service = dname.split("-")[-1]
        if service not in SERVICES:
            continue
        config = configs.get(dname, {}).get("kafka", {})
        check(config.get("security_protocol") == "sasl_ssl", f"production: {dname} is not on SASL_SSL")
        users[service] = config.get("sasl_username")
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        ref = env.get("HELPLINE_KAFKA_SASL_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef")
        check(ref is not None, f"production: {dname} has no Kafka password from a Secret")
        secrets[service] = (ref or {}).get("name")
    check(len(users) == len(SERVICES) and len(set(users.values())) == len(SERVICES),
          f"production: the services do not each sign in to Kafka as a user of their own: {users}")
    check(len(set(secrets.values())) == len(SERVICES),
          f"production: the services share Kafka password Secrets: {secrets}")
    job = next((j for j in by_kind.get("Job", []) if j["metadata"]["name"].endswith("-topics")), None)
    check(job is not None, "production: no topics Job")
    if job:
        container = job["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        admin = kafka["principals"]["admin"]
        check(f"sasl.username={admin['username']}" in args, "production: the topics Job is not the admin principal")
        check("--acls" in args, "production: the topics Job does not create the ACLs")
        for service in SERVICES:
            check(f"{service}=User:{users.get(service)}" in args,
                  f"production: the ACLs are not for {service}'s own user {users.get(service)}")
        env = {e["name"]: e for e in container.get("env", [])}
        check(env.get("KAFKA_SASL_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name")
              == admin["passwordSecret"]["name"], "production: the topics Job's password is not the admin's")
    # A shared user, a shared Secret, a missing one, or less than SASL_SSL is refused.
    check_production_refuses((
            (("kafka.principals.catalog.username=helpline-identity",), "same user"),
            (("kafka.principals.catalog.passwordSecret.name=helpline-kafka-identity",), "same password"),
            (("kafka.principals.payments.passwordSecret.name=",), "kafka.principals.payments.passwordSecret.name"),
            (("kafka.principals.analyst.username=helpline-payments",), "same user"),
            (("services.catalog.config.kafka.security_protocol=plaintext",), "services.catalog.config.kafka"),
            (("kafka.topics.create=false",), "kafka.acls.create needs kafka.topics.create"),
            (("kafka.securityProtocol=sasl_plaintext",), "requireSaslSsl")))


def check_tls(by_kind, values):
    """Production's gRPC: mutual TLS everywhere with the release's
    certificate from cert-manager, probes on the plaintext health port,
    plaintext refused by the services and by the chart."""
    tls = values["tls"]
    check(tls["enabled"] and tls["required"], "production: TLS is not required")
    mine = {"cert_file": "/etc/helpline/tls/tls.crt", "key_file": "/etc/helpline/tls/tls.key",
            "ca_file": "/etc/helpline/tls/ca.crt"}
    configs = {c["metadata"]["name"]: json.loads(c["data"]["config.json"])
               for c in by_kind.get("ConfigMap", []) if "config.json" in c["data"]}
    names = []
    for deployment in by_kind.get("Deployment", []):
        dname = deployment["metadata"]["name"]
        service = dname.split("-")[-1] if not dname.endswith("psp-sandbox") else "psp-sandbox"
        names.append(dname)
        config = configs.get(dname, {})
        check(config.get("tls", {}).get("required") is True, f"production: {dname} may fall back to plaintext")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        check(mounts.get("tls") == "/etc/helpline/tls", f"production: {dname} does not mount the certificate")
        if service == "gateway":
            check(config.get("gateway", {}).get("backend_tls") == mine,
                  f"production: the gateway does not call the services with the release's certificate")
            continue
        grpc = config.get("grpc", {})
        check(grpc.get("tls") == {"cert_file": mine["cert_file"], "key_file": mine["key_file"],
                                  "client_ca_file": mine["ca_file"]},
              f"production: {dname} does not serve mutual TLS: {grpc.get('tls')}")
        health = tls["healthPort"]
        check(grpc.get("health_listen") == f"0.0.0.0:{health}", f"production: {dname} has no health port")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            check(container.get(probe, {}).get("grpc", {}).get("port") == health,
                  f"production: {dname}'s {probe} does not ask the plaintext health port")
        if service not in ("identity", "psp-sandbox"):
            check(config.get("auth", {}).get("identity", {}).get("tls") == mine,
                  f"production: {dname} fetches identity's token keys without TLS")
        if service == "payments":
            processor = config.get("payments", {}).get("processor", {}).get("tls", {})
            check(processor.get("ca_file") == "/etc/helpline/processor-ca/ca.crt" and
                  processor.get("cert_file") == mine["cert_file"],
                  f"production: payments calls its processor without TLS: {processor}")
    certificates = {c["spec"]["secretName"]: c["spec"] for c in by_kind.get("Certificate", [])}
    check(len(certificates) == len(names), f"production: not one cert-manager Certificate per component")
    check(tls["certManager"]["issuerRef"]["kind"] == "Issuer",
          "production: a ClusterIssuer signs for anyone in the cluster who may ask")
    for dname in names:
        component = "psp-sandbox" if dname.endswith("psp-sandbox") else dname.split("-")[-1]
        secret = f"{tls['secretName']}-{component}"
        deployment = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == dname)
        mounted = {v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"]
                   if "secret" in v and v["name"] == "tls"}
        check(mounted == {secret}, f"production: {dname} mounts {mounted}, not its own certificate {secret}")
        spec = certificates.get(secret, {})
        if component == "gateway":
            check(not spec.get("dnsNames") and spec.get("usages") == ["client auth", "digital signature"],
                  f"production: the gateway's certificate can serve: {spec}")
        else:
            check(spec.get("dnsNames", [None])[0] == dname and
                  all(n.startswith(dname + ".") or n == dname for n in spec.get("dnsNames", [])),
                  f"production: {dname}'s certificate names others: {spec.get('dnsNames')}")
            check("server auth" in spec.get("usages", []), f"production: {dname}'s certificate cannot serve")
    check_production_refuses(((("tls.enabled=false",), "tls.required"),
                              (("services.catalog.config.grpc.health_listen=0.0.0.0:1",), "services.catalog.config.grpc"),
                              (("services.payments.config.tls.required=false",), "services.payments.config.tls"),
                              (("pspSandbox.enabled=true",), "tls.processorCaSecret")))


def dashboard_files():
    return sorted(f for f in os.listdir(DASHBOARDS_DIR) if f.endswith(".json"))


def replaced(node, old, new):
    """A parsed YAML document with `old` replaced by `new` in every string."""
    if isinstance(node, dict):
        return {key: replaced(value, old, new) for key, value in node.items()}
    if isinstance(node, list):
        return [replaced(value, old, new) for value in node]
    return node.replace(old, new) if isinstance(node, str) else node


def check_monitoring():
    """With the dashboards and the rule enabled (and every Service, the
    sandbox processor's too): a ConfigMap per dashboard for Grafana's
    sidecar, the rules file as a PrometheusRule with its runbook links, the
    ServiceMonitor labelling targets as the rules and dashboards select them."""
    base = "https://docs.example.org/helpline/v1"
    monitoring = {"pspSandbox": {"enabled": True},
                  "metrics": {"serviceMonitor": {"enabled": True},
                              "dashboards": {"enabled": True, "label": "grafana_dashboard",
                                             "labelValue": "1", "folder": "Helpline"},
                              "prometheusRule": {"enabled": True, "runbookBase": base,
                                                 "labels": {"release": "kube-prometheus-stack"}}}}
    with tempfile.NamedTemporaryFile("w", suffix="-monitoring.yaml") as values_file:
        yaml.safe_dump(monitoring, values_file)
        values_file.flush()
        lint = helm("lint", "--strict", CHART, "-f", values_file.name)
        check(lint.returncode == 0, f"monitoring: helm lint --strict failed: {lint.stdout}{lint.stderr}")
        docs = render(values_file.name)
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)

    # Dashboards: each file a ConfigMap of its own with the sidecar's label
    # and folder, under a ConfigMap's 1 MiB; JSON Grafana takes, with a uid
    # and title of its own, every panel on the ${datasource} variable.
    files = dashboard_files()
    check(len(files) >= 4, f"monitoring: only {files} in {DASHBOARDS_DIR}")
    shipped = {}
    for config_map in by_kind.get("ConfigMap", []):
        metadata = config_map["metadata"]
        keys = set(config_map.get("data", {})) & set(files)
        if not keys:
            continue
        where = f"monitoring: dashboard ConfigMap {metadata['name']}"
        check(len(config_map["data"]) == 1, f"{where} holds {sorted(config_map['data'])}, not one dashboard")
        check(metadata.get("labels", {}).get("grafana_dashboard") == "1", f"{where} lacks grafana_dashboard: \"1\"")
        check(metadata.get("annotations", {}).get("grafana_folder") == "Helpline",
              f"{where} is not in the folder metrics.dashboards.folder")
        check(len(yaml.safe_dump(config_map).encode()) < 2**20, f"{where} is over a ConfigMap's 1 MiB")
        for key in keys:
            check(key not in shipped, f"monitoring: {key} is in more than one ConfigMap")
            shipped[key] = config_map["data"][key]
    check(sorted(shipped) == files, f"monitoring: dashboards shipped {sorted(shipped)}, files {files}")
    uids, titles = set(), set()
    for key, text in sorted(shipped.items()):
        try:
            board = json.loads(text)
        except ValueError as error:
            check(False, f"monitoring: {key} is not JSON: {error}")
            continue
        with open(os.path.join(DASHBOARDS_DIR, key)) as original:
            check(board == json.load(original), f"monitoring: {key} is not shipped as the file has it")
        uid, title = board.get("uid"), board.get("title")
        check(uid and uid not in uids, f"monitoring: {key} has no uid of its own ({uid!r})")
        check(title and title not in titles, f"monitoring: {key} has no title of its own ({title!r})")
        uids.add(uid)
        titles.add(title)
        variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
        source = variables.get("datasource", {})
        check(source.get("type") == "datasource" and source.get("query") == "prometheus",
              f"monitoring: {key} has no Prometheus datasource variable")
        panels = [p for top in board.get("panels", []) for p in [top, *top.get("panels", [])]]
        queried = [p for p in panels if p.get("type") != "row"]
        check(queried, f"monitoring: {key} has no panels")
        ids = [p.get("id") for p in panels]
        check(len(set(ids)) == len(ids), f"monitoring: {key} repeats panel ids")
        for panel in queried:
            what = f"monitoring: {key}'s panel {panel.get('title')!r}"
            check(panel.get("datasource", {}).get("uid") == "${datasource}" and panel.get("targets") and
                  all(t.get("datasource", {}).get("uid") == "${datasource}" for t in panel["targets"]),
                  f"{what} does not query ${{datasource}}")
            check(panel.get("description"), f"{what} does not say what to read in it")
            check(panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{what} has no unit")

    # The rule: the rules file as it is, RUNBOOK_BASE replaced by the base.
    rules = by_kind.get("PrometheusRule", [])
    check(len(rules) == 1, f"monitoring: {len(rules)} PrometheusRules")
    monitors = by_kind.get("ServiceMonitor", [])
    check(len(monitors) == 1, f"monitoring: {len(monitors)} ServiceMonitors")
    if not rules or not monitors:
        return
    rule = rules[0]
    check(rule["metadata"].get("labels", {}).get("release") == "kube-prometheus-stack",
          "monitoring: the PrometheusRule lacks metrics.prometheusRule.labels")
    with open(RULES_FILE) as original:
        expected = replaced(yaml.safe_load(original), "RUNBOOK_BASE", base)
    check(rule["spec"] == expected, "monitoring: the PrometheusRule's spec is not files/prometheus/alerts.yaml")
    check("RUNBOOK_BASE" not in yaml.safe_dump(rule), "monitoring: RUNBOOK_BASE is left in the PrometheusRule")
    with tempfile.NamedTemporaryFile("w", suffix="-rules.yaml") as rules_file:
        yaml.safe_dump(rule["spec"], rules_file)
        rules_file.flush()
        try:
            checked = subprocess.run([PROMTOOL, "check", "rules", rules_file.name], capture_output=True, text=True)
            check(checked.returncode == 0, f"monitoring: promtool refuses the PrometheusRule's rules: "
                                           f"{checked.stdout}{checked.stderr}")
        except FileNotFoundError:
            check(False, f"monitoring: no {PROMTOOL} to check the PrometheusRule's rules with")
    alerts = [r for group in rule["spec"].get("groups", []) for r in group.get("rules", []) if "alert" in r]
    check(alerts, "monitoring: the PrometheusRule has no alert")
    for alert in alerts:
        what = f"monitoring: alert {alert['alert']}"
        check(alert.get("labels", {}).get("severity"), f"{what} has no severity label")
        check(alert.get("annotations", {}).get("runbook_url", "").startswith(base + "/"),
              f"{what} does not link to its runbook under metrics.prometheusRule.runbookBase")
        # The overview's firing-alerts panels select alertname=~"Helpline.*".
        check(alert["alert"].startswith("Helpline"), f"{what} is not named Helpline*: the overview misses it")

    # The ServiceMonitor labels every target helpline_service (its
    # Service's app.kubernetes.io/name) and with the job the rules select;
    # every Service it scrapes has that name and a metrics port.
    monitor = monitors[0]
    for endpoint in monitor["spec"]["endpoints"]:
        relabelings = endpoint.get("relabelings", [])
        check({"sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_name"],
               "targetLabel": "helpline_service", "action": "replace"} in relabelings,
              f"monitoring: the ServiceMonitor's {endpoint['port']} targets get no helpline_service")
        jobs = {r.get("replacement") for r in relabelings if r.get("targetLabel") == "job"}
        selected = {job for group in rule["spec"]["groups"] for r in group.get("rules", [])
                    for job in re.findall(r'\bjob="([^"]*)"', str(r.get("expr", "")))}
        check(len(jobs) == 1 and selected <= jobs,
              f"monitoring: the rules select job {sorted(selected)}, the ServiceMonitor sets {sorted(jobs, key=str)}")
    scraped = [s for s in by_kind.get("Service", []) if selects(monitor["spec"]["selector"], s["metadata"]["labels"])]
    check(len(scraped) == len(by_kind.get("Deployment", [])),
          f"monitoring: the ServiceMonitor scrapes {len(scraped)} Services for "
          f"{len(by_kind.get('Deployment', []))} Deployments")
    check(any(s["metadata"]["name"].endswith("-psp-sandbox") for s in scraped),
          "monitoring: the sandbox processor is not scraped")
    for service in scraped:
        check(service["metadata"]["labels"].get("app.kubernetes.io/name") and
              any(p["name"] == "metrics" for p in service["spec"]["ports"]),
              f"monitoring: {service['metadata']['name']} has no app.kubernetes.io/name or no metrics port")

    # Dashboards elsewhere when asked, in the release's namespace otherwise.
    elsewhere = render_with("metrics.dashboards.enabled=true", "metrics.dashboards.namespace=monitoring",
                            "metrics.dashboards.label=grafana.example.org/dashboard",
                            "metrics.dashboards.labelValue=helpline")
    maps = [d for d in yaml.safe_load_all(elsewhere.stdout) if d and d["kind"] == "ConfigMap" and
            set(d.get("data", {})) & set(files)] if elsewhere.returncode == 0 else []
    check(len(maps) == len(files) and
          all(m["metadata"].get("namespace") == "monitoring" and
              m["metadata"]["labels"].get("grafana.example.org/dashboard") == "helpline" and
              "annotations" not in m["metadata"] for m in maps),
          f"the dashboards do not follow metrics.dashboards' namespace and label: {elsewhere.stderr}")


def render_with(*settings):
    args = ["template", "hl", CHART, "--kube-version", KUBERNETES_VERSION]
    for setting in settings:
        args += ["--set", setting]
    return helm(*args)


def main():
    files = [None] + sorted(os.path.join(VALUES_DIR, f) for f in os.listdir(VALUES_DIR) if f.endswith(".yaml"))
    for values_file in files:
        by_kind, values = check_release(values_file)
        name = os.path.basename(values_file) if values_file else "defaults"
        if name == "defaults":
            check("PrometheusRule" not in by_kind, "defaults: a PrometheusRule renders")
            check(not any(set(c.get("data", {})) & set(dashboard_files()) for c in by_kind.get("ConfigMap", [])),
                  "defaults: dashboard ConfigMaps render")
        if name == "production.yaml":
            check(len(by_kind.get("PodDisruptionBudget", [])) == len(by_kind.get("Deployment", [])),
                  "production: not every Deployment has a PodDisruptionBudget")
            check(all(p["spec"]["minAvailable"] >= 2 for p in by_kind.get("PodDisruptionBudget", [])),
                  "production: a PodDisruptionBudget lets more than one of three go")
            check(all(h["spec"]["minReplicas"] >= 3 for h in by_kind.get("HorizontalPodAutoscaler", [])) and
                  len(by_kind.get("HorizontalPodAutoscaler", [])) == len(by_kind.get("Deployment", [])),
                  "production: not every service autoscales from three replicas")
            check_kafka_principals(by_kind, values)
            check_tls(by_kind, values)
    # The schema turns wrong values away, naming them.
    for setting, field in (("kafka.securityProtocol=tcp", "securityProtocol"),
                           ("securityContext.readOnlyRootFilesystem=false", "readOnlyRootFilesystem"),
                           ("kafka.topics.partitions=0", "partitions"),
                           ("services.identity.replicas=zero", "replicas"),
                           ("unknownKey=1", "unknownKey"),
                           ("gateway.corsOrigins[0]=*", "corsOrigins"),
                           ("gateway.corsOrigins[0]=app.example.org", "corsOrigins"),
                           ("gateway.maxRequestBytes=100", "maxRequestBytes"),
                           ("gateway.streamTimeout=ten", "streamTimeout"),
                           ("gateway.clientsFrom=null", "clientsFrom"),
                           ("metrics.dashbords.enabled=true", "dashbords"),
                           ("metrics.dashboards.labelValue=one two", "labelValue"),
                           ("metrics.prometheusRule.runbookBase=docs/runbook", "runbookBase"),
                           ("metrics.prometheusRule.labels.release=1", "release")):
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
    # The gateway: its Ingress when enabled, nothing of it when disabled; an
    # ingress that would cut streams or refuse what the gateway takes, and a
    # gateway in front of a service the release does not run, are refused.
    values = values_of(None)
    for settings, change in ((("gateway.ingress.enabled=true",), {"ingress": {"enabled": True}}),
                             (("gateway.enabled=false",), {"enabled": False})):
        done = render_with(*settings)
        check(done.returncode == 0, f"{settings}: helm template failed: {done.stderr}")
        changed = copy.deepcopy(values)
        for key, value in change.items():
            if isinstance(value, dict):
                changed["gateway"][key].update(value)
            else:
                changed["gateway"][key] = value
        by_kind = {}
        for doc in yaml.safe_load_all(done.stdout):
            if doc:
                by_kind.setdefault(doc["kind"], []).append(doc)
        check_gateway(" ".join(settings), by_kind, changed)
    for settings, words in (
            (("gateway.ingress.enabled=true", "gateway.streamTimeout=1h"), "proxy-read-timeout"),
            (("gateway.ingress.enabled=true", "gateway.config.gateway.stream_timeout=30m"), "proxy-read-timeout"),
            (("gateway.ingress.enabled=true", "gateway.maxRequestBytes=8388608"), "proxy-body-size"),
            (("services.payments.enabled=false",), "payments"),
            (("gateway.port=9090",), "metricsPort")):
        done = render_with(*settings)
        check(done.returncode != 0 and words in done.stderr, f"{settings} was rendered")
    elsewhere = render_with("services.payments.enabled=false",
                            "gateway.config.gateway.payments_target=payments.other:7000")
    check(elsewhere.returncode == 0 and "payments.other:7000" in elsewhere.stdout,
          f"a gateway calling a payments elsewhere was refused: {elsewhere.stderr}")
    check_monitoring()
    return finish(failures)


if __name__ == "__main__":
    sys.exit(main())
