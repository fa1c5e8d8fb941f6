"""Validates rendered Kontor manifests offline; deploy/check runs it on every overlay.

Three layers, each of which fails the run:
1. Schema: every resource against the Kubernetes OpenAPI schema (kubernetes-validate, strict:
   unknown fields are errors). Custom resources against the schemas in schemas/; a kind with
   no schema at all is an error here (kubernetes-validate only warns about it).
2. Kontor's rules: what the schemas cannot see. Pods run non-root on a read-only root
   filesystem with no privilege escalation, no capabilities and the RuntimeDefault seccomp
   profile; every container has requests and limits; Secrets are never mounted with subPath;
   the API and the worker have their probes; every Kontor pod is covered by a NetworkPolicy; Services, PDBs,
   HPAs and ServiceMonitors select something that exists; the configuration agrees with the
   processes deployed (a separate worker means worker.embedded = false; a migration Job
   means database.migrate_on_start = false).
3. Configuration (with --kontor BIN): every Kontor container's configuration, the ConfigMap's
   kontor.toml plus its KONTOR_… variables (Secret values replaced by dummies of the same
   shape), is loaded by the real binary (`kontor config print`), and every variable must change
   the effective configuration (the hub ignores a misspelt one silently); a region's pods
   must hold exactly the region's cell.

Usage: validate.py [--kubernetes-version V] [--kontor BIN] [--banks-example FILE] RENDERED.yaml...
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

from config_check import check_config_with_binary
from manifests import (
    Report, config_of, is_kontor, kontor_command, name_of, namespace_of, pod_templates,
)

HERE = pathlib.Path(__file__).resolve().parent


def load_crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for path in sorted((HERE / "schemas").glob("*.json")):
        schema = json.loads(path.read_text())
        props = schema["properties"]
        schemas[(props["apiVersion"]["const"], props["kind"]["const"])] = schema
    return schemas


def check_schema(resources: list[dict], version: str, crds: dict, report: Report) -> dict:
    counts = {"kubernetes": 0, "crd": 0}
    for resource in resources:
        key = (resource.get("apiVersion"), resource.get("kind"))
        if key in crds:
            validator = jsonschema.Draft202012Validator(crds[key])
            errors = sorted(validator.iter_errors(resource), key=lambda e: list(e.path))
            for e in errors:
                path = ".".join(str(p) for p in e.path)
                report.error(resource, f"{path}: {e.message}")
            counts["crd"] += 1
            continue
        try:
            kubernetes_validate.validate(resource, version, strict=True)
            counts["kubernetes"] += 1
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            report.error(resource, f"{path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            report.error(resource, f"no schema: {e.message}")
    return counts


def selects(selector: dict | None, labels: dict) -> bool:
    """Whether a matchLabels selector (the only kind these manifests use) selects `labels`."""
    if not selector:
        return False
    if selector.get("matchExpressions"):
        raise ValueError("matchExpressions are not supported by this check")
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def check_pod(workload: dict, template: dict, report: Report) -> None:
    spec = template["spec"]
    meta = template.get("metadata", {})
    pod_sc = spec.get("securityContext", {})
    if pod_sc.get("runAsNonRoot") is not True:
        report.error(workload, "pod securityContext.runAsNonRoot must be true")
    if not isinstance(pod_sc.get("runAsUser"), int) or pod_sc.get("runAsUser") == 0:
        report.error(workload, "pod securityContext.runAsUser must be a non-zero number")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        report.error(workload, "pod securityContext.seccompProfile.type must be RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        report.error(workload, "automountServiceAccountToken must be false")
    if meta.get("annotations", {}).get("linkerd.io/inject") != "enabled":
        report.error(workload, "pod template needs the annotation linkerd.io/inject: enabled")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for container in spec.get("initContainers", []) + spec["containers"]:
        cname = container["name"]
        sc = container.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            report.error(workload, f"{cname}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            report.error(workload, f"{cname}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            report.error(workload, f"{cname}: capabilities must drop ALL")
        if sc.get("capabilities", {}).get("add"):
            report.error(workload, f"{cname}: no capabilities may be added")
        if sc.get("privileged"):
            report.error(workload, f"{cname}: must not be privileged")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in resources.get(kind, {}):
                    report.error(workload, f"{cname}: resources.{kind}.{res} is missing")
        image = container.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] and "@" not in image or image.endswith(":latest"):
            report.error(workload, f"{cname}: image {image!r} needs a fixed tag or digest")
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            if mount.get("subPath") and ("secret" in volume or "configMap" in volume):
                report.error(
                    workload,
                    f"{cname}: {mount['name']} is mounted with subPath, which never sees updates",
                )
    component = workload["metadata"].get("labels", {}).get("app.kubernetes.io/component")
    # The API and the worker serve /healthz and /readyz (the worker on worker.listen).
    if workload["kind"] == "Deployment" and component in ("api", "worker"):
        main = spec["containers"][0]
        live = main.get("livenessProbe", {}).get("httpGet", {}).get("path")
        ready = main.get("readinessProbe", {}).get("httpGet", {}).get("path")
        if live != "/healthz":
            report.error(workload, f"liveness probe must GET /healthz, not {live!r}")
        if ready != "/readyz":
            report.error(workload, f"readiness probe must GET /readyz, not {ready!r}")


def check_rules(resources: list[dict], report: Report) -> None:
    by_kind: dict[str, list[dict]] = {}
    for r in resources:
        by_kind.setdefault(r["kind"], []).append(r)
    templates = pod_templates(resources)
    for workload, template in templates:
        if is_kontor(workload):
            check_pod(workload, template, report)

    def pods_in(namespace: str) -> list[tuple[dict, dict]]:
        return [(w, t) for w, t in templates if namespace_of(w) == namespace]

    # Every Kontor pod is covered by a NetworkPolicy that restricts both directions.
    for workload, template in templates:
        if not is_kontor(workload):
            continue
        labels = template["metadata"].get("labels", {})
        covered = [
            p for p in by_kind.get("NetworkPolicy", [])
            if namespace_of(p) == namespace_of(workload)
            and selects(p["spec"].get("podSelector"), labels)
            and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
        ]
        if not covered:
            report.error(workload, "no NetworkPolicy restricts both ingress and egress of its pods")

    # Selectors select something.
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
        for r in by_kind.get(kind, []):
            selector = r["spec"].get("podSelector") if kind == "NetworkPolicy" else r["spec"].get("selector")
            if kind == "Service":
                selector = {"matchLabels": selector}
            if not any(
                selects(selector, t["metadata"].get("labels", {}))
                for _, t in pods_in(namespace_of(r))
            ):
                report.error(r, "its selector matches no pod template")
    for monitor in by_kind.get("ServiceMonitor", []):
        services = [s for s in by_kind.get("Service", []) if namespace_of(s) == namespace_of(monitor)]
        matched = [s for s in services if selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]
        if not matched:
            report.error(monitor, "its selector matches no Service")
        ports = {p.get("name") for s in matched for p in s["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            if "port" in endpoint and endpoint["port"] not in ports:
                report.error(monitor, f"port {endpoint['port']!r} is not a port of the Service")

    # An autoscaled Deployment leaves replicas to the autoscaler.
    workloads = {(namespace_of(w), w["kind"], name_of(w)): w for w, _ in templates}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        target = workloads.get((namespace_of(hpa), ref["kind"], ref["name"]))
        if target is None:
            report.error(hpa, f"scaleTargetRef {ref['kind']}/{ref['name']} does not exist")
        elif "replicas" in target["spec"]:
            report.error(target, "sets replicas although an autoscaler scales it")

    # The configuration agrees with the processes deployed.
    for namespace in sorted({namespace_of(w) for w, _ in templates if is_kontor(w)}):
        kontor = [(w, t) for w, t in pods_in(namespace) if is_kontor(w)]
        commands = {kontor_command(t): w for w, t in kontor}
        serve = commands.get("serve")
        if serve is None:
            continue
        config = config_of(resources, serve, report)
        if config is None:
            continue
        embedded = config.get("worker", {}).get("embedded", True)
        if "worker" in commands and embedded:
            report.error(serve, "a worker Deployment runs beside it, so worker.embedded must be false")
        if "worker" not in commands and not embedded:
            report.error(serve, "no worker runs the jobs: worker.embedded must be true")
        migrate_on_start = config.get("database", {}).get("migrate_on_start", True)
        if "migrate" in commands and migrate_on_start:
            report.error(serve, "the migration Job is the only migrator: database.migrate_on_start must be false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", default=kubernetes_validate.latest_version())
    parser.add_argument("--kontor", help="a kontor binary: also load every configuration with it")
    parser.add_argument("--banks-example", help="banks.toml to use where the bank Secret is external")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    crds = load_crd_schemas()
    failed = False
    for file in args.files:
        report = Report(file)
        with open(file) as f:
            resources = [r for r in yaml.safe_load_all(f) if r]
        counts = check_schema(resources, args.kubernetes_version, crds, report)
        try:
            check_rules(resources, report)
        except (KeyError, ValueError) as e:
            report.error(None, f"rules check could not run: {e!r}")
        configs = None
        if args.kontor and not report.errors:
            configs = check_config_with_binary(resources, args.kontor, args.banks_example, report)
        for line in report.errors:
            print(f"ERROR {line}")
        failed |= bool(report.errors)
        status = "FAILED" if report.errors else "ok"
        config_note = "configuration not loaded (no --kontor)" if configs is None else f"{configs} configurations loaded by kontor"
        print(
            f"{status} {file}: {len(resources)} resources, {counts['kubernetes']} valid against "
            f"Kubernetes {args.kubernetes_version} (strict), {counts['crd']} against schemas/; "
            f"{len(report.errors)} errors; {config_note}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
