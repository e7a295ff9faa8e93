"""deploy/: every file parses, names only cdnpack commands and flags that exist (each command's
--help), the Prometheus config turns targets into /probe parameters of real CDNs and targets,
and the Athena tables have exactly the columns the shared aggregation SQL reads."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from probes.config import SHIPPED_CONFIG, load_config
from rum.aggregate import Mapping_, render
from rum.cloudfront import REALTIME_FIELDS, STANDARD_COLUMNS, column
from rum.ingest import TRINO_MACROS
from tests.conftest import cdnpack_cli

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
_EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")


def _commands_in(value: Any) -> Iterator[str]:
    """Every cdnpack invocation of a parsed YAML document: a container's command + args, or a
    workflow step's `run` script."""
    if isinstance(value, dict):
        if value.get("command") == ["cdnpack"] and isinstance(value.get("args"), list):
            yield "cdnpack " + shlex.join(str(a) for a in value["args"])
        script = value.get("run")
        if isinstance(script, str):
            text = _EXPRESSION.sub("X", script).replace("\\\n", " ")
            yield from (line[line.find("cdnpack "):] for line in text.splitlines()
                        if "cdnpack " in line)
        for v in value.values():
            yield from _commands_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _commands_in(v)


def invocations() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        name = str(path.relative_to(DEPLOY))
        if path in YAML_FILES:
            found += [(name, c) for doc in yaml.safe_load_all(path.read_text())
                      for c in _commands_in(doc)]
        else:  # docs and comments: `cdnpack ...` in backquotes
            found += [(name, m) for m in re.findall(r"`(cdnpack [^`]+)`", path.read_text())]
    return found


@cache
def help_text(command: tuple[str, ...]) -> str:
    done = cdnpack_cli(*command, "--help")
    assert done.returncode == 0, f"cdnpack {' '.join(command)} --help: {done.stderr}"
    return done.stdout


def test_every_yaml_file_parses() -> None:
    assert len(YAML_FILES) >= 4
    for path in YAML_FILES:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, path


def test_kubernetes_has_a_probe_cronjob_for_every_shipped_region() -> None:
    regions = {r.id for r in load_config(SHIPPED_CONFIG).regions}
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "probe-cronjobs.yaml").read_text()))
    assert {d["kind"] for d in docs} == {"CronJob"}
    assert {d["metadata"]["labels"]["region"] for d in docs} == regions
    for d in docs:
        args = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[:3] == ["probe", "--region", d["metadata"]["labels"]["region"]]
        assert "--results" in args


INVOCATIONS = invocations()


def test_deploy_files_name_cdnpack_commands() -> None:
    named = {c.split()[1] for _, c in INVOCATIONS}
    assert {"probe", "exporter", "gate", "rum"} <= named


@pytest.mark.parametrize(("where", "command"), INVOCATIONS,
                         ids=[f"{w}:{c[:40]}" for w, c in INVOCATIONS])
def test_every_named_command_and_flag_exists(where: str, command: str) -> None:
    tokens = shlex.split(command.rstrip("."))
    words = [t for t in tokens[1:3] if not t.startswith("-") and t.isidentifier()]
    sub = tuple(words[:2]) if words[:1] == ["rum"] else tuple(words[:1])
    text = help_text(sub)
    flags = {t.split("=")[0] for t in tokens if t.startswith("--") and len(t) > 2}
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", text), (
            f"{where}: `cdnpack {' '.join(sub)}` has no {flag}")


def test_prometheus_config_turns_targets_into_probe_parameters() -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config = load_config(SHIPPED_CONFIG)
    cdns = {c.id for c in config.cdns}
    paths = {t.path for t in config.targets}
    probed = [job for job in doc["scrape_configs"] if job.get("metrics_path") == "/probe"]
    assert probed
    for job in probed:
        rules = {r.get("target_label"): r for r in job["relabel_configs"]}
        assert {"__param_cdn", "__param_target", "__address__", "instance"} <= set(rules)
        for target in (t for sc in job["static_configs"] for t in sc["targets"]):
            params = {}
            for name in ("__param_cdn", "__param_target"):
                rule = rules[name]
                match = re.fullmatch(rule["regex"], target)
                assert match, (job["job_name"], target)
                params[name] = match.expand(rule["replacement"].replace("$", "\\"))
            assert params["__param_cdn"] in cdns
            assert params["__param_target"] in paths


@pytest.mark.parametrize(("name", "fmt", "columns"), [
    ("cloudfront_standard_logs.sql", "cloudfront-standard", STANDARD_COLUMNS),
    ("cloudfront_realtime_logs.sql", "cloudfront-realtime",
     tuple(column(f) for f in REALTIME_FIELDS)),
])
def test_athena_tables_have_the_columns_the_aggregation_reads(
        name: str, fmt: str, columns: tuple[str, ...]) -> None:
    ddl = (DEPLOY / "athena" / name).read_text()
    match = re.search(r"CREATE EXTERNAL TABLE IF NOT EXISTS (\w+) \((.*?)\n\)\nROW FORMAT "
                      r"DELIMITED\n  FIELDS TERMINATED BY '\\t'", ddl, re.DOTALL)
    assert match, name
    declared = re.findall(r"`(\w+)` string", match.group(2))
    assert tuple(declared) == columns
    assert "LOCATION 's3://" in ddl
    # The same table in DuckDB: the shared aggregation SQL binds to it and runs
    con = duckdb.connect()
    for macro in TRINO_MACROS:
        con.execute(macro)
    body = match.group(2).replace("`", '"')
    con.execute(f"CREATE TABLE {match.group(1)} ({body})")
    source = f"(SELECT *, 'x' AS filename FROM {match.group(1)})"
    assert con.execute(render(fmt, source, Mapping_((), ()))).fetchall() == []
