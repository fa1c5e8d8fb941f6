"""The configuration check: every Kontor container's configuration loaded by the real binary.

The ConfigMap's kontor.toml plus the container's KONTOR_… variables (Secret values replaced by
dummies of the same shape) must be accepted by `kontor config print`; every variable must change
the effective configuration (the hub ignores a misspelt one silently); a region's pods must hold
exactly the region's cell.
"""

from __future__ import annotations

import base64
import os
import pathlib
import subprocess
import tempfile
import tomllib

from manifests import Report, config_of, config_path, is_kontor, kontor_command, mounted_data, pod_templates

# Dummy values for Secret keys, shaped like the real ones, for the configuration check.
DUMMY_KEY = base64.b64encode(bytes(range(32))).decode()
DUMMY_SECRETS = {
    "control-url": "postgres://kontor:dummy@control.invalid:5432/kontor",
    "cell-url": "postgres://kontor:dummy@cell.invalid:5432/kontor_cell",
    "keys-url": "postgres://kontor:dummy@keys.invalid:5432/kontor_keys",
    "signing-keys": f'[{{id="dummy",secret="{DUMMY_KEY}"}}]',
    "key-encryption-keys": f'[{{id="dummy",secret="{DUMMY_KEY}"}}]',
}


def check_config_with_binary(
    resources: list[dict], kontor: str, banks_example: str | None, report: Report
) -> int:
    """Loads every Kontor container's configuration with the real binary; returns how many."""
    checked = 0
    for workload, template in pod_templates(resources):
        command = kontor_command(template)
        if not is_kontor(workload) or command is None:
            continue
        config = config_of(resources, workload, report)
        if config is None:
            continue
        container = template["spec"]["containers"][0]
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = pathlib.Path(tmp)
            data, file = mounted_data(resources, workload, config_path(template))
            (tmp_path / "kontor.toml").write_text(data[file])
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            wanted: list[str] = []
            for var in container.get("env", []):
                name = var["name"]
                if "value" in var:
                    env[name] = var["value"]
                elif "secretKeyRef" in var.get("valueFrom", {}):
                    key = var["valueFrom"]["secretKeyRef"]["key"]
                    if key not in DUMMY_SECRETS:
                        report.error(workload, f"{name}: no dummy value for Secret key {key!r}")
                        continue
                    env[name] = DUMMY_SECRETS[key]
                else:
                    report.error(workload, f"{name}: unsupported env source")
                    continue
                if name.startswith("KONTOR_"):
                    wanted.append(name)
            if "banks_file" in config:
                banks, banks_name = mounted_data(resources, workload, config["banks_file"])
                if banks is None:
                    report.error(workload, f"banks_file {config['banks_file']} is not on a mounted volume")
                    continue
                if banks_name in banks:
                    text = banks[banks_name]
                elif banks_example:
                    text = pathlib.Path(banks_example).read_text()
                else:
                    report.error(workload, "banks_file comes from a Secret outside the manifests: pass --banks-example")
                    continue
                (tmp_path / "banks.toml").write_text(text)
                env["KONTOR_BANKS_FILE"] = str(tmp_path / "banks.toml")
            def config_print(environment: dict) -> subprocess.CompletedProcess:
                return subprocess.run(
                    [kontor, "config", "print", "--config", str(tmp_path / "kontor.toml")],
                    env=environment, capture_output=True, text=True, timeout=60, check=False,
                )

            result = config_print(env)
            if result.returncode != 0:
                report.error(workload, f"`kontor config print` refused it: {result.stderr.strip()}")
                continue
            effective = tomllib.loads(result.stdout)
            # A variable the hub ignores (a misspelt key, a section it does not read from the
            # environment) leaves the effective configuration as it is without it.
            for name in wanted:
                without = config_print({k: v for k, v in env.items() if k != name})
                if without.returncode == 0 and without.stdout == result.stdout:
                    report.error(workload, f"{name} sets no key of the effective configuration")
            region = workload["metadata"].get("labels", {}).get("kontor/region")
            cells = set(effective.get("cells", {}))
            if region and cells != {region}:
                report.error(workload, f"region {region} pods must hold only the {region} cell, not {sorted(cells)}")
            checked += 1
    return checked
