#!/usr/bin/env python3
"""Consistency checks on deploy/ that no schema validator does (run by .ci/run).

- compose.yaml: every depends_on target, env file, bind-mount source, named
  volume and build file exists; each Bazaar service runs `serve <itself>`,
  listens on its SPEC port and has its own database; the shared env files
  carry every service URL and client secret; Prometheus scrapes every service.
- k8s/: every ConfigMap/Secret key a pod references exists; each Deployment
  serves its own service on its SPEC port with probes, resources and a
  non-root, read-only root filesystem; kustomization lists every manifest.

Exit status 1 with one line per problem.
"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PORTS = {"gateway": 8000, "identity": 8001, "catalog": 8002, "orders": 8003,
         "payments": 8004, "notifications": 8005}
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


def check_compose():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose.get("services", {})
    volumes = set((compose.get("volumes") or {}).keys())
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
    for name, port in PORTS.items():
        svc = services.get(name)
        if svc is None:
            problem(f"compose.yaml: no service {name}")
            continue
        up = name.upper()
        if svc.get("command") != ["serve", name]:
            problem(f"compose.yaml services.{name}: command should be [serve, {name}]")
        env = svc.get("environment") or {}
        if env.get(f"BAZAAR_{up}_LISTEN") != f"0.0.0.0:{port}":
            problem(f"compose.yaml services.{name}: BAZAAR_{up}_LISTEN should be 0.0.0.0:{port}")
        if "BAZAAR_BROKER_URL" not in env:
            problem(f"compose.yaml services.{name}: no BAZAAR_BROKER_URL")
        if name != "gateway":
            db = env.get(f"BAZAAR_{up}_DATABASE_URL", "")
            host = f"{name}-db"
            if f"@{host}:" not in db or host not in services:
                problem(f"compose.yaml services.{name}: needs its own database {host}")
        if shared.get(f"BAZAAR_{up}_URL") != f"http://{name}:{port}":
            problem(f"deploy env files: BAZAAR_{up}_URL should be http://{name}:{port}")
        if not shared.get(f"BAZAAR_{up}_CLIENT_SECRET"):
            problem(f"deploy env files: no BAZAAR_{up}_CLIENT_SECRET")
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]}
    for name, port in PORTS.items():
        if f"{name}:{port}" not in targets:
            problem(f"prometheus.yml: does not scrape {name}:{port}")


def check_k8s():
    k8s = DEPLOY / "k8s"
    docs = {}
    for path in sorted(k8s.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    kust = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    for missing in sorted(set(docs) - set(kust.get("resources", []))):
        problem(f"k8s/kustomization.yaml: {missing} not listed in resources")
    for listed in kust.get("resources", []):
        if listed not in docs:
            problem(f"k8s/kustomization.yaml: lists missing file {listed}")
    objs = [d for ds in docs.values() for d in ds]
    keys = {}
    for d in objs:
        if d["kind"] in ("ConfigMap", "Secret"):
            keys[(d["kind"], d["metadata"]["name"])] = set(
                (d.get("data") or {}) | (d.get("stringData") or {}))
    deployments = {d["metadata"]["name"]: d for d in objs if d["kind"] == "Deployment"}
    k8s_services = {d["metadata"]["name"]: d for d in objs if d["kind"] == "Service"}
    for name, port in PORTS.items():
        dep = deployments.get(name)
        where = f"k8s Deployment {name}"
        if dep is None:
            problem(f"k8s: no Deployment {name}")
            continue
        if name not in k8s_services:
            problem(f"k8s: no Service {name}")
        pod = dep["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot"):
            problem(f"{where}: runAsNonRoot not set")
        for c in pod["containers"]:
            if c.get("args") != ["serve", name]:
                problem(f"{where}: args should be [serve, {name}]")
            if [p["containerPort"] for p in c.get("ports", [])] != [port]:
                problem(f"{where}: container port should be {port}")
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                problem(f"{where}: readinessProbe should GET /readyz")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                problem(f"{where}: livenessProbe should GET /healthz")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits"):
                problem(f"{where}: resources requests and limits required")
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
                problem(f"{where}: read-only root fs and no privilege escalation required")
            names = {e["name"] for e in c.get("env", [])}
            if f"BAZAAR_{name.upper()}_LISTEN" not in names:
                problem(f"{where}: no BAZAAR_{name.upper()}_LISTEN")
            for src in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in src and (kind, src[field]["name"]) not in keys:
                        problem(f"{where}: envFrom unknown {kind} {src[field]['name']}")
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {})
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if field in ref:
                        r = ref[field]
                        if r["key"] not in keys.get((kind, r["name"]), set()):
                            problem(f"{where}: {e['name']} refers to missing {kind} key {r['name']}/{r['key']}")


check_compose()
check_k8s()
for p in problems:
    print(f"deploy: {p}")
if problems:
    sys.exit(1)
print("deploy: compose.yaml, prometheus.yml and k8s/ are consistent")
