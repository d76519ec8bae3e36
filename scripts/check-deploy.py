#!/usr/bin/env python3
"""Policy and consistency checks on deploy/ that no schema validator does
(run by .ci/run).

compose.yaml
- every depends_on target, env file, bind-mount source, named volume, secret
  and build file exists; each Bazaar service runs `serve <itself>`, listens on
  its SPEC port, has its own database and checks its health with
  `bazaar healthcheck` (the image has no shell);
- no password or secret URL inline: secrets come from Compose `secrets:`
  (BAZAAR_<KEY>_FILE, the images' _FILE settings); every published port is
  bound to 127.0.0.1;
- brokers: RabbitMQ and NATS each in their own profile with a health check,
  and every Bazaar service waits for either (required: false) — so a profile
  starts only its broker and the services wait for it; nothing Bazaar runs
  depends on the optional observability services;
- Prometheus scrapes every service (the gateway on its admin port).

k8s/ (rendered with `kubectl kustomize`: overlays/dev, overlays/prod,
secrets-example)
- every Deployment runs under its own ServiceAccount, which mounts no API
  token; every namespace has a default-deny NetworkPolicy; no Deployment
  has both `replicas` and an HPA; PDBs say maxUnavailable: 1;
- the ConfigMap is generated (hash-suffixed name: edits roll pods); prod
  holds no Secret (applying it never overwrites real ones) and every Secret
  key its pods use is in secrets-example; only secrets-example holds
  REPLACE-ME; a migration Job runs `bazaar migrate` and the services start
  with BAZAAR_MIGRATE_ON_START=false;
- each Deployment serves its own service on its SPEC port with probes,
  resources, a non-root user and a read-only root filesystem; prod's edge is
  an HTTPRoute to the gateway, and the Ingress component renders;
- the monitoring component (Prometheus Operator CRDs, which no schema
  validator knows) renders over the base: its ServiceMonitors select every
  service's Service by a port that Service has (the gateway's admin port),
  and its PrometheusRule holds exactly deploy/prometheus/rules/bazaar.yml's
  groups.

Exit status 1 with one line per problem.
"""
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PORTS = {"gateway": 8000, "identity": 8001, "catalog": 8002, "orders": 8003,
         "payments": 8004, "notifications": 8005}
# Internal gRPC ports (SPEC §1), of the services that serve one.
GRPC = {"identity": 9001, "catalog": 9002, "payments": 9004}
OBSERVABILITY = {"jaeger", "prometheus", "grafana"}
SECRETISH = re.compile(r"(PASSWORD|PASS|SECRET|DATABASE_URL|BROKER_URL|REDIS_URL|TOKEN)$")
problems = []


def problem(msg):
    problems.append(msg)


def env_file(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def as_dict(env):
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return env or {}


def check_compose():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose.get("services", {})
    volumes = set((compose.get("volumes") or {}).keys())
    secrets = compose.get("secrets") or {}
    shared = {}
    for name, svc in services.items():
        where = f"compose.yaml services.{name}"
        for dep in (svc.get("depends_on") or {}):
            if dep not in services:
                problem(f"{where}: depends_on unknown service {dep!r}")
        for f in svc.get("env_file") or []:
            path = DEPLOY / (f if isinstance(f, str) else f["path"])
            if not path.exists():
                problem(f"{where}: env_file {path.relative_to(ROOT)} missing")
            else:
                shared.update(env_file(path))
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0]
            if src.startswith((".", "/")):
                if not (DEPLOY / src).exists():
                    problem(f"{where}: bind mount source {src} missing")
            elif src not in volumes:
                problem(f"{where}: volume {src!r} not declared under volumes")
        build = svc.get("build")
        if build:
            ctx = DEPLOY / build["context"]
            if not (ctx / build.get("dockerfile", "Dockerfile")).exists():
                problem(f"{where}: Dockerfile not found from build context")
        for s in svc.get("secrets") or []:
            source = s if isinstance(s, str) else s["source"]
            if source not in secrets:
                problem(f"{where}: secret {source!r} not declared under secrets")
        for key, value in as_dict(svc.get("environment")).items():
            if SECRETISH.search(key) and not key.endswith("_FILE"):
                problem(f"{where}: {key} inline; pass it as a Compose secret ({key}_FILE)")
            if re.search(r"://[^/\s:@]+:[^@\s/]+@", str(value)):
                problem(f"{where}: {key} has a password inline")
        for port in svc.get("ports") or []:
            text = port if isinstance(port, str) else str(port.get("host_ip", "")) + ":"
            if not str(text).startswith("127.0.0.1:"):
                problem(f"{where}: port {port!r} published on every interface; bind it to 127.0.0.1")
    for name, spec in secrets.items():
        if "file" not in spec and "environment" not in spec:
            problem(f"compose.yaml secrets.{name}: needs file or environment")
    for broker in ("rabbitmq", "nats"):
        svc = services.get(broker)
        if svc is None:
            problem(f"compose.yaml: no {broker} service")
            continue
        if svc.get("profiles") != [broker]:
            problem(f"compose.yaml services.{broker}: should be in profile [{broker}] only")
        if "healthcheck" not in svc:
            problem(f"compose.yaml services.{broker}: needs a healthcheck to be waited for")
    for name in OBSERVABILITY & set(services):
        if "observability" not in (services[name].get("profiles") or []):
            problem(f"compose.yaml services.{name}: should be in the observability profile")
    for name, port in PORTS.items():
        svc = services.get(name)
        where = f"compose.yaml services.{name}"
        if svc is None:
            problem(f"compose.yaml: no service {name}")
            continue
        up = name.upper()
        if svc.get("command") != ["serve", name]:
            problem(f"{where}: command should be [serve, {name}]")
        env = as_dict(svc.get("environment"))
        if env.get(f"BAZAAR_{up}_LISTEN") != f"0.0.0.0:{port}":
            problem(f"{where}: BAZAAR_{up}_LISTEN should be 0.0.0.0:{port}")
        if "BAZAAR_BROKER_URL_FILE" not in env:
            problem(f"{where}: no BAZAAR_BROKER_URL_FILE")
        deps = svc.get("depends_on") or {}
        for broker in ("rabbitmq", "nats"):
            d = deps.get(broker) or {}
            if d.get("condition") != "service_healthy" or d.get("required") is not False:
                problem(f"{where}: should wait for {broker} (service_healthy, required: false)")
        for obs in OBSERVABILITY & set(deps):
            problem(f"{where}: depends on optional {obs}")
        test = (svc.get("healthcheck") or {}).get("test")
        if test != ["CMD", "bazaar", "healthcheck", name]:
            problem(f"{where}: healthcheck should be [CMD, bazaar, healthcheck, {name}]")
        own = [s if isinstance(s, str) else s["source"] for s in svc.get("secrets") or []]
        if f"{name}_client_secret" not in own:
            problem(f"{where}: no {name}_client_secret secret")
        if name != "gateway":
            host = f"{name}-db"
            if env.get(f"BAZAAR_{up}_DATABASE_URL_FILE") != f"/run/secrets/{name}_database_url" \
                    or f"{name}_database_url" not in own or host not in services:
                problem(f"{where}: needs its own database {host} (secret {name}_database_url)")
        if shared.get(f"BAZAAR_{up}_URL") != f"http://{name}:{port}":
            problem(f"deploy env files: BAZAAR_{up}_URL should be http://{name}:{port}")
        if name in GRPC:
            g = GRPC[name]
            if env.get(f"BAZAAR_{up}_GRPC_LISTEN") != f"0.0.0.0:{g}":
                problem(f"{where}: BAZAAR_{up}_GRPC_LISTEN should be 0.0.0.0:{g}")
            if shared.get(f"BAZAAR_{up}_GRPC_URL") != f"http://{name}:{g}":
                problem(f"deploy env files: BAZAAR_{up}_GRPC_URL should be http://{name}:{g}")
    identity = [s if isinstance(s, str) else s["source"]
                for s in (services.get("identity") or {}).get("secrets") or []]
    for name in PORTS:
        if f"{name}_client_secret" not in identity:
            problem(f"compose.yaml services.identity: needs every client secret ({name})")
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    for name, port in PORTS.items():
        want = "gateway:8010" if name == "gateway" else f"{name}:{port}"
        if want not in targets:
            problem(f"prometheus.yml: does not scrape {want}")


def render(path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        problem("kubectl (for `kubectl kustomize`) is not installed")
        return []
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        problem(f"kubectl kustomize {path.relative_to(ROOT)}: {out.stderr.strip()}")
        return []
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def of_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def containers(pod):
    return pod.get("containers", []) + pod.get("initContainers", [])


def check_overlay(label, objs, secret_keys):
    where0 = f"k8s {label}"
    text = yaml.safe_dump_all(objs)
    if "REPLACE-ME" in text:
        problem(f"{where0}: renders a REPLACE-ME placeholder (keep them in secrets-example)")
    sas = {o["metadata"]["name"]: o for o in of_kind(objs, "ServiceAccount")}
    config_maps = {o["metadata"]["name"]: o for o in of_kind(objs, "ConfigMap")}
    for name, cm in config_maps.items():
        if not re.search(r"-[2456789bcdfghkmt]{10}$", name):
            problem(f"{where0}: ConfigMap {name} is not generated (no hash suffix: edits would not roll pods)")
    if label == "prod" and of_kind(objs, "Secret"):
        problem(f"{where0}: holds Secrets; applying it would overwrite the real ones")
    keys = dict(secret_keys)
    for s in of_kind(objs, "Secret"):
        keys[s["metadata"]["name"]] = set((s.get("data") or {}) | (s.get("stringData") or {}))
    cm_keys = {n: set(c.get("data") or {}) for n, c in config_maps.items()}
    namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"} - {None}
    for ns in sorted(namespaces):
        deny = [p for p in of_kind(objs, "NetworkPolicy")
                if p["metadata"].get("namespace") == ns and p["spec"].get("podSelector") == {}
                and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                and not p["spec"].get("ingress") and not p["spec"].get("egress")]
        if not deny:
            problem(f"{where0}: namespace {ns} has no default-deny NetworkPolicy")
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objs, "HorizontalPodAutoscaler")}
    for pdb in of_kind(objs, "PodDisruptionBudget"):
        if pdb["spec"].get("maxUnavailable") != 1 or "minAvailable" in pdb["spec"]:
            problem(f"{where0}: PDB {pdb['metadata']['name']} should say maxUnavailable: 1")
    workloads = of_kind(objs, "Deployment") + of_kind(objs, "Job")
    for w in workloads:
        name = w["metadata"]["name"]
        where = f"{where0} {w['kind']} {name}"
        pod = w["spec"]["template"]["spec"]
        sa = pod.get("serviceAccountName")
        if not sa or sa == "default" or sa not in sas:
            problem(f"{where}: needs its own ServiceAccount")
        elif sas[sa].get("automountServiceAccountToken") is not False:
            problem(f"{where0}: ServiceAccount {sa} should set automountServiceAccountToken: false")
        if pod.get("automountServiceAccountToken") is not False:
            problem(f"{where}: automountServiceAccountToken should be false")
        if w["kind"] == "Deployment" and "replicas" in w["spec"] and name in hpa_targets:
            problem(f"{where}: sets replicas while an HPA owns its scale")
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problem(f"{where}: runAsNonRoot not set")
        for c in containers(pod):
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{where}: read-only root fs and no privilege escalation required")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                problem(f"{where}: resources requests and limits required")
            for src in c.get("envFrom", []):
                if "configMapRef" in src and src["configMapRef"]["name"] not in cm_keys:
                    problem(f"{where}: envFrom unknown ConfigMap {src['configMapRef']['name']}")
                if "secretRef" in src and src["secretRef"]["name"] not in keys:
                    problem(f"{where}: envFrom unknown Secret {src['secretRef']['name']}")
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["key"] not in keys.get(ref["name"], set()):
                    problem(f"{where}: {e['name']} refers to missing Secret key {ref['name']}/{ref['key']}")
    jobs = [j for j in of_kind(objs, "Job")
            if any(c.get("args") == ["migrate"] for c in containers(j["spec"]["template"]["spec"]))]
    if not jobs:
        problem(f"{where0}: no migration Job running `bazaar migrate`")
    if not any(c.get("data", {}).get("BAZAAR_MIGRATE_ON_START") == "false" for c in config_maps.values()):
        problem(f"{where0}: services should start with BAZAAR_MIGRATE_ON_START=false (the Job migrates)")
    deployments = {d["metadata"]["name"]: d for d in of_kind(objs, "Deployment")}
    k8s_services = {s["metadata"]["name"] for s in of_kind(objs, "Service")}
    service_ports = {s["metadata"]["name"]: {p["port"] for p in s["spec"].get("ports", [])}
                     for s in of_kind(objs, "Service")}
    config = {k: v for c in config_maps.values() for k, v in (c.get("data") or {}).items()}
    allowed = set()
    for pol in of_kind(objs, "NetworkPolicy"):
        target = (pol["spec"].get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in pol["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                allowed.add((target, port.get("port")))
    for name, g in GRPC.items():
        up = name.upper()
        if g not in service_ports.get(name, set()):
            problem(f"{where0}: Service {name} lacks its gRPC port {g}")
        if config.get(f"BAZAAR_{up}_GRPC_URL") != f"http://{name}:{g}":
            problem(f"{where0}: ConfigMap should set BAZAAR_{up}_GRPC_URL=http://{name}:{g}")
        if (name, g) not in allowed:
            problem(f"{where0}: no NetworkPolicy lets callers reach {name}:{g} (gRPC)")
        dep = deployments.get(name)
        if dep:
            c = dep["spec"]["template"]["spec"]["containers"][0]
            if g not in [p["containerPort"] for p in c.get("ports", [])]:
                problem(f"{where0} Deployment {name}: no gRPC container port {g}")
            if not any(e["name"] == f"BAZAAR_{up}_GRPC_LISTEN" and e.get("value") == f"0.0.0.0:{g}"
                       for e in c.get("env", [])):
                problem(f"{where0} Deployment {name}: BAZAAR_{up}_GRPC_LISTEN should be 0.0.0.0:{g}")
    for name, port in PORTS.items():
        target_ok = (name, port) in allowed or name == "gateway"
        if not target_ok:
            problem(f"{where0}: no NetworkPolicy lets traffic reach {name}:{port}")
    for name, port in PORTS.items():
        dep = deployments.get(name)
        where = f"{where0} Deployment {name}"
        if dep is None:
            problem(f"{where0}: no Deployment {name}")
            continue
        if name not in k8s_services:
            problem(f"{where0}: no Service {name}")
        if dep["spec"]["template"]["spec"].get("serviceAccountName") != name:
            problem(f"{where}: serviceAccountName should be {name}")
        for c in dep["spec"]["template"]["spec"]["containers"]:
            if c.get("args") != ["serve", name]:
                problem(f"{where}: args should be [serve, {name}]")
            ports = [p["containerPort"] for p in c.get("ports", [])]
            if ports[:1] != [port]:
                problem(f"{where}: first container port should be {port}")
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                problem(f"{where}: readinessProbe should GET /readyz")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                problem(f"{where}: livenessProbe should GET /healthz")
            names = {e["name"] for e in c.get("env", [])}
            if f"BAZAAR_{name.upper()}_LISTEN" not in names:
                problem(f"{where}: no BAZAAR_{name.upper()}_LISTEN")


def check_k8s():
    example = render(K8S / "secrets-example")
    example_keys = {s["metadata"]["name"]: set((s.get("data") or {}) | (s.get("stringData") or {}))
                    for s in of_kind(example, "Secret")}
    if not example_keys:
        problem("k8s secrets-example: renders no Secret")
    for s in of_kind(example, "Secret"):
        if re.search(r"-[2456789bcdfghkmt]{10}$", s["metadata"]["name"]):
            problem(f"k8s secrets-example: Secret {s['metadata']['name']} has a hash suffix; prod refers to fixed names")
    for label in ("dev", "prod"):
        objs = render(K8S / "overlays" / label)
        if objs:
            check_overlay(label, objs, example_keys if label == "prod" else {})
        if label == "prod":
            routes = of_kind(objs, "HTTPRoute")
            backends = [b for r in routes for rule in r["spec"].get("rules", [])
                        for b in rule.get("backendRefs", [])]
            if not any(b.get("name") == "gateway" and b.get("port") == 8000 for b in backends):
                problem("k8s prod: no HTTPRoute to the gateway's port 8000")
            if not of_kind(objs, "HorizontalPodAutoscaler"):
                problem("k8s prod: no HorizontalPodAutoscaler")
        if label == "dev" and not of_kind(objs, "Ingress"):
            problem("k8s dev: the Ingress component does not render")


def check_monitoring():
    # A Component renders only inside a Kustomization: a throw-away one
    # beside the overlays (kustomize refuses absolute paths).
    tmp = K8S / ".monitoring-render"
    tmp.mkdir(exist_ok=True)
    try:
        (tmp / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "namespace: bazaar\nresources:\n  - ../base\ncomponents:\n  - ../components/monitoring\n")
        objs = render(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not objs:
        return
    services = {s["metadata"]["name"]: s for s in of_kind(objs, "Service")}
    scraped = {}
    for sm in of_kind(objs, "ServiceMonitor"):
        sel = sm["spec"]["selector"]
        ports = {e["port"] for e in sm["spec"]["endpoints"]}
        for name, svc in services.items():
            labels = svc["metadata"].get("labels") or {}
            ok = all(labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items())
            for e in sel.get("matchExpressions") or []:
                ok = ok and e["operator"] == "In" and labels.get(e["key"]) in e["values"]
            if ok:
                named = {p.get("name") for p in svc["spec"].get("ports", [])}
                for port in ports:
                    if port not in named:
                        problem(f"k8s monitoring: ServiceMonitor {sm['metadata']['name']} scrapes port {port}, which Service {name} lacks")
                scraped.setdefault(name, set()).update(ports)
    for name in PORTS:
        want = "admin" if name == "gateway" else "http"
        if want not in scraped.get(name, set()):
            problem(f"k8s monitoring: no ServiceMonitor scrapes {name} on its {want} port")
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "bazaar.yml").read_text())["groups"]
    prs = of_kind(objs, "PrometheusRule")
    if len(prs) != 1 or prs[0]["spec"]["groups"] != rules:
        problem("k8s monitoring: the PrometheusRule differs from deploy/prometheus/rules/bazaar.yml "
                "(run python3 scripts/gen-prometheusrule.py)")


check_compose()
check_k8s()
check_monitoring()
for p in problems:
    print(f"deploy: {p}")
if problems:
    sys.exit(1)
print("deploy: compose.yaml, prometheus.yml and k8s/ (dev, prod, secrets-example) pass the policy checks")
