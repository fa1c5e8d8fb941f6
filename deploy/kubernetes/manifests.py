"""Reading rendered manifests: Kontor's workloads, their commands and the files mounted into them.

Shared by validate.py (schemas and rules) and config_check.py (the configuration, loaded by the
kontor binary).
"""

from __future__ import annotations

import base64
import os
import tomllib

WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
KONTOR_COMMANDS = {"serve", "worker", "migrate"}


class Report:
    def __init__(self, source: str):
        self.source = source
        self.errors: list[str] = []

    def error(self, resource: dict | None, message: str) -> None:
        where = f"{resource['kind']}/{resource['metadata'].get('name', '?')}" if resource else "-"
        self.errors.append(f"{self.source}: {where}: {message}")


def name_of(resource: dict) -> str:
    return resource.get("metadata", {}).get("name", "")


def namespace_of(resource: dict) -> str:
    return resource.get("metadata", {}).get("namespace", "default")


def pod_templates(resources: list[dict]) -> list[tuple[dict, dict]]:
    return [
        (r, r["spec"]["template"]) for r in resources if r["kind"] in WORKLOADS
    ]


def is_kontor(resource: dict) -> bool:
    return resource["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "kontor"


def kontor_command(template: dict) -> str | None:
    args = template["spec"]["containers"][0].get("args") or []
    return args[0] if args and args[0] in KONTOR_COMMANDS else None


def config_path(template: dict) -> str | None:
    args = template["spec"]["containers"][0].get("args") or []
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def mounted_data(resources: list[dict], workload: dict, path: str) -> tuple[dict | None, str | None]:
    """The ConfigMap or Secret data mounted at the directory holding `path`, and the file name."""
    template = workload["spec"]["template"]["spec"]
    directory, file = os.path.split(path)
    mount = next(
        (m for m in template["containers"][0].get("volumeMounts", []) if m["mountPath"] == directory),
        None,
    )
    if mount is None:
        return None, file
    volume = next(v for v in template.get("volumes", []) if v["name"] == mount["name"])
    namespace = namespace_of(workload)
    if "configMap" in volume:
        wanted = ("ConfigMap", volume["configMap"]["name"])
    elif "secret" in volume:
        wanted = ("Secret", volume["secret"]["secretName"])
    else:
        return None, file
    for r in resources:
        if (r["kind"], name_of(r)) == wanted and namespace_of(r) == namespace:
            data = dict(r.get("data", {}))
            if r["kind"] == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                data.update(r.get("stringData", {}))
            return data, file
    return {}, file  # mounted from a resource created outside these manifests


def config_of(resources: list[dict], workload: dict, report: Report) -> dict | None:
    path = config_path(workload["spec"]["template"])
    if path is None:
        report.error(workload, "no --config argument")
        return None
    data, file = mounted_data(resources, workload, path)
    if not data or file not in data:
        report.error(workload, f"{path} is not mounted from a ConfigMap in these manifests")
        return None
    try:
        return tomllib.loads(data[file])
    except tomllib.TOMLDecodeError as e:
        report.error(workload, f"{path}: {e}")
        return None
