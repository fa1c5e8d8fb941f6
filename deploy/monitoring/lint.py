"""Checks deploy/monitoring against the code; deploy/check runs it after promtool's own checks.

1. Every kontor_* metric the alert rules and the dashboard use is one the hub exports today:
   found as `metrics::counter!`/`histogram!`/`gauge!("kontor_…")` in the workspace's crates
   (histograms as their _bucket, _count and _sum series).
2. Every metric the hub exports is in the catalogue of docs/OPERATIONS.md.
3. Every dashboard query parses as PromQL (promtool, with the dashboard's variables filled in).
4. Every alert is really tested: with its expression replaced by one that never fires, the
   unit tests must fail.

Usage: lint.py REPO_ROOT PROMTOOL
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

MACRO = re.compile(r'\b(?:metrics::)?(counter|histogram|gauge)!\(\s*"(kontor_[a-z0-9_]+)"')
USED = re.compile(r"\bkontor_[a-z0-9_]+\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# Crates whose metrics are not the hub's: the load tools measure the hub from outside.
NOT_THE_HUB = {"kontor-bench"}


def exported_metrics(root: pathlib.Path) -> dict[str, str]:
    metrics: dict[str, str] = {}
    for path in sorted((root / "crates").glob("*/src/**/*.rs")):
        if path.relative_to(root / "crates").parts[0] in NOT_THE_HUB:
            continue
        for kind, name in MACRO.findall(path.read_text()):
            metrics[name] = kind
    return metrics


def series_names(metrics: dict[str, str]) -> set[str]:
    names = set()
    for name, kind in metrics.items():
        if kind == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
        else:
            names.add(name)
    return names


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return queries


def fill_variables(expr: str) -> str:
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$namespace", "kontor-de")
    )


def main() -> int:
    root = pathlib.Path(sys.argv[1]).resolve()
    promtool = sys.argv[2]
    here = root / "deploy" / "monitoring"
    errors: list[str] = []

    metrics = exported_metrics(root)
    if not metrics:
        errors.append("found no metrics::counter!/histogram!/gauge! in crates/: the pattern is stale")
    exported = series_names(metrics)

    rules = yaml.safe_load((here / "alerts.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    dashboard = json.loads((here / "dashboard.json").read_text())
    queries = dashboard_queries(dashboard)

    for alert in alerts:
        for name in sorted(set(USED.findall(alert["expr"])) - exported):
            errors.append(f"alert {alert['alert']} uses {name}, which the hub does not export")
    for title, expr in queries:
        for name in sorted(set(USED.findall(expr)) - exported):
            errors.append(f"dashboard panel {title!r} uses {name}, which the hub does not export")

    operations = (root / "docs" / "OPERATIONS.md").read_text()
    for name in sorted(metrics):
        if f"`{name}`" not in operations:
            errors.append(f"{name} ({metrics[name]}) is exported but missing from docs/OPERATIONS.md")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = pathlib.Path(tmp)
        recording = {
            "groups": [{
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query:{i}", "expr": fill_variables(expr)}
                    for i, (_, expr) in enumerate(queries)
                ],
            }]
        }
        (tmp_path / "dashboard-rules.yaml").write_text(yaml.safe_dump(recording))
        result = subprocess.run(
            [promtool, "check", "rules", str(tmp_path / "dashboard-rules.yaml")],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            errors.append("dashboard queries do not parse:\n" + result.stdout + result.stderr)

        # Each alert with a never-firing expression: the tests must notice.
        shutil.copy(here / "alerts.test.yaml", tmp_path / "alerts.test.yaml")
        for alert in alerts:
            mutated = yaml.safe_load((here / "alerts.yaml").read_text())
            for group in mutated["groups"]:
                for rule in group["rules"]:
                    if rule.get("alert") == alert["alert"]:
                        rule["expr"] = "vector(1) > 2"
            (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(mutated))
            result = subprocess.run(
                [promtool, "test", "rules", str(tmp_path / "alerts.test.yaml")],
                capture_output=True, text=True, check=False,
            )
            if result.returncode == 0:
                errors.append(f"alert {alert['alert']} has no test that sees it fire")

    for error in errors:
        print(f"ERROR {error}")
    print(
        f"{'FAILED' if errors else 'ok'} monitoring: {len(metrics)} metrics exported by the hub, "
        f"{len(alerts)} alerts and {len(queries)} dashboard queries use only those; "
        f"every alert's tests fail when it cannot fire; {len(errors)} errors"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
