"""The cdnpack command line: parse options, call one job, render its result; no business logic."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from packager.encoding.ladder import PRESETS
from packager.errors import CdnpackError, ToolError
from packager.output.release import FORMATS

if TYPE_CHECKING:
    from rich.progress import TaskID

    from cdn.publish import PushRequest, PushResult
    from packager.keys.model import Keystore, StoredKey
    from packager.output.pipeline import PackageRequest, PackageResult, ProgressSink
    from probes.config import ProbeConfig
    from probes.gate import Verdict
    from probes.score import Scorecard
    from release.flow import RolloutResult

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)
#: Piped output (CI logs, `| tee`) gets room for the score table instead of rich's 80 columns.
out_console = Console(width=None if sys.stdout.isatty() else 150)

#: How each stage's progress reads: unit and divisor.
_UNITS = {
    "transcode": ("s", 1.0), "segment": (" tracks", 1.0), "upload": (" MB", 1e6),
    "objects": (" objects", 1.0),
}

#: Encoders the default ladder needs; doctor fails when the ffmpeg build lacks one.
REQUIRED_ENCODERS = ("libx264", "aac")


def main() -> None:
    """Console-script entry: every CdnpackError becomes one line on stderr and its exit code."""
    # SIGTERM (Kubernetes, CI cancel) unwinds like Ctrl-C: temp trees removed, children stopped.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cdnpack(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except CdnpackError as exc:
        _fail(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted")
        sys.exit(130)
    except Exception as exc:
        logging.getLogger("cdnpack").debug("internal error", exc_info=True)
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        sys.exit(4)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _fail(message: str) -> None:
    """One line on stderr, never wrapped: scripts grep it and CI logs show it whole."""
    click.echo(f"cdnpack: {' '.join(message.split())}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug with commands).")
def cdnpack(verbose: int) -> None:
    """Package, push and probe video releases for worldwide multi-CDN delivery."""
    from rich.logging import RichHandler
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console)]
    )


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)


@cdnpack.command()
@json_option
def doctor(as_json: bool) -> None:
    """Show the tools cdnpack will run, their versions, and the encoders available."""
    from rich.table import Table

    from packager.tools import TOOL_ENV, ffmpeg_encoders, find_tool, tool_version
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for name, env in TOOL_ENV.items():
        row: dict[str, Any] = {"tool": name, "override": env}
        try:
            tool = find_tool(name)
            row.update(path=str(tool.path), source=tool.source, version=tool_version(tool))
            if name == "ffmpeg":
                encoders = ffmpeg_encoders(tool)
                row["encoders"] = [e for e in encoders if e in _INTERESTING_ENCODERS]
                missing = [e for e in REQUIRED_ENCODERS if e not in encoders]
                if missing:
                    problems.append(f"ffmpeg lacks encoder(s) {', '.join(missing)}")
        except CdnpackError as exc:
            row["error"] = str(exc)
            problems.append(str(exc))
        rows.append(row)
    if as_json:
        click.echo(json.dumps({"ok": not problems, "tools": rows, "problems": problems}, indent=2))
    else:
        table = Table(title="cdnpack doctor")
        for col in ("tool", "version", "source", "path / problem"):
            table.add_column(col)
        for row in rows:
            table.add_row(
                row["tool"], row.get("version", "-"), row.get("source", "-"),
                row.get("path", "") if "error" not in row else f"[red]{row['error']}[/red]",
            )
        out_console.print(table)
        for row in rows:
            if row.get("encoders"):
                out_console.print(f"encoders: {', '.join(row['encoders'])}")
    if problems:
        raise ToolError("; ".join(problems))


_INTERESTING_ENCODERS = (
    "libx264", "libx265", "libsvtav1", "libvpx-vp9", "aac", "libopus", "libmp3lame",
)


def _from_env(param: str) -> bool:
    source = click.get_current_context().get_parameter_source(param)
    return source == click.core.ParameterSource.ENVIRONMENT


@cdnpack.command("package")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Release directory to create (built aside, renamed into place).")
@click.option("--ladder", default="default", show_default=True,
              help=f"Preset ({', '.join(PRESETS)}) or a YAML ladder file.")
@click.option("--segment-duration", type=float, default=4.0, show_default=True,
              help="Target segment duration in seconds (keyframe every segment).")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Manifest formats (repeatable); both by default.")
@click.option("--copy", is_flag=True, help="No transcode: re-package H.264/HEVC + AAC as is.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--encrypt", metavar="cenc|cbcs|aes-128",
              help="cenc (AES-CTR) or cbcs (AES-CBC 1:9) CMAF; aes-128: HLS MPEG-TS segments.")
@click.option("--key", envvar="CDNPACK_KEY", show_envvar=True, metavar="KID:KEY",
              help="Content key as KID_HEX:KEY_HEX (prefer the env var: no shell history).")
@click.option("--iv", metavar="HEX",
              help="cbcs constant IV (16 bytes); cenc / aes-128: the first sample's/segment's.")
@click.option("--key-uri", metavar="URI", help="aes-128: key URI written into EXT-X-KEY.")
@click.option("--keys", "key_source", metavar="generate|raw|cpix:FILE|speke:URL",
              help="generate: new keys; raw: the --key KID:KEY; cpix:FILE: a CPIX 2.3 "
                   "document's keys; speke:URL: a SPEKE v2.0 key server's. All but raw are "
                   "stored in the keystore first.")
@click.option("--per-class", is_flag=True,
              help="--keys generate|speke: one key per track class (AUDIO, SD, HD, UHD).")
@click.option("--class-thresholds", metavar="SD=H,HD=H",
              help="Largest frame height of the SD and HD classes (default SD=576,HD=1080).")
@click.option("--key-server-timeout", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="--keys speke: total time for the exchange [30].")
@click.option("--speke-sigv4-region", metavar="REGION",
              help="--keys speke: sign with AWS SigV4 (execute-api) for API Gateway in REGION.")
@click.option("--playready-la-url", metavar="URL",
              help="PlayReady licence acquisition URL written into its header (LA_URL).")
@click.option("--widevine-content-id", metavar="0xHEX|TEXT",
              help="content_id of the Widevine pssh: 0x-prefixed hex, else UTF-8 text.")
@click.option("--keystore", type=click.Path(path_type=Path),
              help="Keystore directory (default: under the user's data dir).")
@click.option("--content-id", help="Title the keys belong to in the keystore; a title that "
              "already has keys keeps them (default: the output directory's name).")
@click.option("--drm", metavar="SYSTEMS",
              help="widevine,playready,clearkey,fairplay (default: all but fairplay for cenc, "
                   "all for cbcs).")
@json_option
def package_command(source: Path, output: Path, force: bool, as_json: bool,
                    **options: Any) -> None:
    """Package SOURCE into an ABR release (CMAF segments, HLS and DASH) at OUTPUT."""
    from packager.output.pipeline import package
    request = _package_request(source, output, force, **options)
    with _progress(quiet=as_json) as sink:
        result = package(request, sink)
    _render_package(result, as_json)


def _package_request(
    source: Path, output: Path, force: bool, *, ladder: str, segment_duration: float,
    formats: tuple[str, ...], copy: bool, encrypt: str | None, key: str | None,
    iv: str | None, key_uri: str | None, key_source: str | None, per_class: bool,
    keystore: Path | None, content_id: str | None, drm: str | None,
    class_thresholds: str | None, key_server_timeout: float | None,
    speke_sigv4_region: str | None, playready_la_url: str | None,
    widevine_content_id: str | None,
) -> PackageRequest:
    """The `package` options (shared by `release`) as a PackageRequest; keys are resolved and
    stored here, before anything is encoded."""
    from packager.encryption.cenc import EncryptionSpec, encryption_request
    from packager.output.pipeline import PackageRequest
    encryption: EncryptionSpec | None
    drm_options = (class_thresholds, key_server_timeout, speke_sigv4_region, playready_la_url,
                   widevine_content_id)
    if key_source or drm or per_class or content_id or any(o is not None for o in drm_options):
        from packager.keys.source import package_encryption
        encryption = package_encryption(
            encrypt, key_source or "raw", output, key=key, iv=iv, drm=drm, per_class=per_class,
            keystore=keystore, content_id=content_id,
            key_from_env=_from_env("key"), key_uri=key_uri, class_thresholds=class_thresholds,
            la_url=playready_la_url, widevine_content_id=widevine_content_id,
            key_server_timeout=key_server_timeout, sigv4_region=speke_sigv4_region,
        )
    else:
        encryption = encryption_request(
            encrypt, key, iv, key_from_env=_from_env("key"), key_uri=key_uri
        )
    return PackageRequest(
        source=source, output=output, ladder=ladder, segment_duration=segment_duration,
        formats=formats or FORMATS, copy=copy, force=force, encryption=encryption,
    )


@cdnpack.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("cdnpack-demo"),
              show_default=True, help="Work directory: source, release, keys, results, report.")
@click.option("--duration", type=float, default=20.0, show_default=True,
              help="Length of the generated source in seconds.")
@json_option
def demo(output: Path, duration: float, as_json: bool) -> None:
    """The release flow on this machine alone: an embedded source packaged with cbcs and
    generated keys, staged on a local S3 origin, probed from six regions through two emulated
    CDNs, gated on the budgets of regions.yaml, then published and invalidated."""
    from probes.config import SHIPPED_CONFIG
    from probes.gate import enforce
    from probes.report import html_report
    from probes.results import write_atomic
    from testbed.demo import run_demo
    with _progress(quiet=as_json) as sink:
        result = run_demo(output, duration, SHIPPED_CONFIG, sink)
    report = output / "report.html"
    write_atomic(report, html_report(result.rollout.card, "cdnpack demo: delivery scorecard"))
    if as_json:
        doc = {"package": _package_doc(result.package), "release": _rollout_doc(result.rollout),
               "report": str(report), "config": str(result.config),
               "keystore": str(result.keystore), "distribution": result.distribution}
        click.echo(json.dumps(doc, indent=2))
    else:
        _render_package(result.package, as_json=False)
        _render_rollout(result.rollout)
        out_console.print(
            f"report: {report}; probe results: {result.rollout.results[0].parent}; "
            f"config: {result.config}; keys: {result.keystore} (outside the release tree)")
    enforce(result.rollout.verdict)


@cdnpack.command("push")
@click.argument("release_dir", type=click.Path(path_type=Path))
@click.argument("destination")
@click.option("--distribution", help="CloudFront distribution id: invalidate changed manifests.")
@click.option("--wait", is_flag=True, help="Wait until the invalidation has completed.")
@click.option("--dry-run", is_flag=True, help="Print the plan; upload nothing.")
@click.option("--prune", is_flag=True,
              help="After the new manifests are live, delete objects the release no longer lists.")
@click.option("--manifest-max-age", type=click.IntRange(0, 86400), default=30, show_default=True,
              help="Cache-Control max-age of playlists and MPD (segments are immutable).")
# 32 is cdn.s3.DEFAULT_CONCURRENCY (tests/test_cli.py holds them together), written out so
# that the CLI's start does not import botocore for every command.
@click.option("--concurrency", type=click.IntRange(1, 256), default=32, show_default=True,
              help="Uploads in flight (more for a distant origin).")
@click.option("--retry-mode", type=click.Choice(["standard", "adaptive"]), default="adaptive",
              show_default=True, help="botocore retry mode (503 SlowDown, resets, throttling).")
@click.option("--max-attempts", type=click.IntRange(1, 50), default=10, show_default=True,
              help="Attempts per request before the push fails.")
@click.option("--endpoint-url", help="Any S3-compatible origin (MinIO, R2, a local moto).")
@click.option("--profile", help="AWS profile.")
@click.option("--region", help="AWS region.")
@json_option
def push_command(release_dir: Path, destination: str, dry_run: bool, prune: bool,
                 as_json: bool, **options: Any) -> None:
    """Push RELEASE_DIR to DESTINATION (s3://BUCKET/PREFIX): segments first, manifests last."""
    from rich.table import Table

    from cdn.publish import push
    request = _push_request(release_dir, destination, dry_run=dry_run, prune=prune, **options)
    with _progress(quiet=as_json or dry_run) as sink:
        result = push(request, sink)
    uploaded = result.uploaded
    if as_json:
        doc = {**_push_doc(result), "dry_run": dry_run,
               "plan": [asdict(p) for p in result.plan] if dry_run else None}
        click.echo(json.dumps(doc, indent=2))
        return
    if dry_run:
        table = Table(title=f"push plan for {result.destination}")
        for col in ("phase", "action", "key", "content type", "cache control"):
            table.add_column(col)
        for p in result.plan:
            table.add_row(str(p.phase), p.action, p.key, p.content_type, p.cache_control)
        out_console.print(table)
    out_console.print(
        f"{result.destination}: {len(uploaded)} uploaded "
        f"({sum(p.bytes for p in uploaded) / 1e6:.1f} MB), "
        f"{len(result.plan) - len(uploaded)} unchanged, {len(result.pruned)} pruned"
        + (", verified" if result.verified else " (dry run)")
        + f" in {result.seconds:.1f} s"
    )
    for inv in result.invalidations:
        out_console.print(f"invalidation {inv.id}: {len(inv.paths)} paths, {inv.status}")


def _push_request(
    release_dir: Path, destination: str, *, distribution: str | None, wait: bool,
    dry_run: bool, prune: bool, manifest_max_age: int, concurrency: int, retry_mode: str,
    max_attempts: int, endpoint_url: str | None, profile: str | None, region: str | None,
) -> PushRequest:
    from cdn.publish import PushRequest
    from cdn.s3 import Connection, parse_s3_url
    return PushRequest(
        release_dir=release_dir,
        destination=parse_s3_url(destination),
        connection=Connection(endpoint_url=endpoint_url, profile=profile, region=region,
                              retry_mode=retry_mode, max_attempts=max_attempts,
                              concurrency=concurrency),
        manifest_max_age=manifest_max_age, distribution=distribution, wait=wait,
        dry_run=dry_run, prune=prune,
    )


@cdnpack.command("release")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("destination")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Release directory to build (as `package -o`).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Regions, CDNs, targets and budgets (default: regions.yaml).")
@click.option("--probe-region", "probe_regions", multiple=True, metavar="ID",
              help="Probe from these regions only (repeatable; default: every region).")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Probe results, one JSONL per region (default: OUTPUT.probes beside OUTPUT).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML scorecard here.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the gate as JUnit XML here.")
@json_option
def release_command(
    source: Path, destination: str, output: Path, force: bool, config_path: Path | None,
    probe_regions: tuple[str, ...], results_dir: Path | None, html_path: Path | None,
    junit: Path | None, as_json: bool, **options: Any,
) -> None:
    """Package SOURCE, stage it at DESTINATION (s3://BUCKET/PREFIX), probe the staged release
    through every CDN of the config, and publish its multivariant playlist and MPD only when
    every budget holds: otherwise exit 1, manifests unpublished.

    Takes every `package` and `push` option (encryption, keys, ladder; endpoint, distribution).
    """
    from packager.errors import InputError
    from packager.output.pipeline import package
    from probes.gate import enforce, junit_xml, write_step_summary
    from probes.report import html_report
    from probes.results import write_atomic
    from release.flow import RolloutRequest, rollout
    push_names = {p.name for p in push_command.params}
    push_options = {k: options.pop(k) for k in list(options) if k in push_names}
    results = results_dir if results_dir is not None else output.with_name(output.name + ".probes")
    if results.resolve().is_relative_to(output.resolve()):
        raise InputError(f"--results-dir {results} is inside the release tree {output}")
    # Everything that can be refused is refused before anything is encoded or stored.
    config = _probe_config(config_path)
    for region in probe_regions:
        config.region(region)
    push_request = _push_request(output, destination, dry_run=False, prune=False,
                                 **push_options)
    request = _package_request(source, output, force, **options)
    with _progress(quiet=as_json) as sink:
        packaged = package(request, sink)
        result = rollout(RolloutRequest(push_request, config, probe_regions, results), sink)
    if html_path is not None:
        write_atomic(html_path, html_report(result.card))
    if junit is not None:
        write_atomic(junit, junit_xml(result.verdict))
    write_step_summary(result.verdict, result.card)
    if as_json:
        click.echo(json.dumps({"package": _package_doc(packaged), **_rollout_doc(result)},
                              indent=2))
    else:
        _render_package(packaged, as_json=False)
        _render_rollout(result)
    enforce(result.verdict)


#: `release` takes the `package` and `push` options as they are: one definition, one behaviour.
release_command.params[-1:-1] = [
    param for param in (*package_command.params, *push_command.params)
    if param.name not in {p.name for p in release_command.params}
    and param.name not in ("release_dir", "dry_run", "prune")
]


@cdnpack.command("sign")
@click.argument("url")
@click.option("--key-pair-id", required=True, help="CloudFront public key id (key group).")
@click.option("--private-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="PEM file: RSA-2048 or ECDSA P-256 private key.")
@click.option("--expires", required=True,
              help="Expiry: epoch seconds, ISO-8601 time, or +DURATION (+3600s, +90m, +12h, +7d).")
@click.option("--starts", help="Not valid before (same forms as --expires): a custom policy.")
@click.option("--ip-range", help="Viewer address range, CIDR (a custom policy).")
@click.option("--resource", help="Policy resource, may hold * wildcards (default: the URL).")
@click.option("--cookies", is_flag=True, help="Print signed cookies instead of a signed URL.")
@click.option("--hash", "hash_name", type=click.Choice(["sha1", "sha256"]), default="sha256",
              show_default=True, help="Signature hash (sha256 adds Hash-Algorithm=SHA256).")
@json_option
def sign_command(
    url: str, key_pair_id: str, private_key: Path, expires: str, starts: str | None,
    ip_range: str | None, resource: str | None, cookies: bool, hash_name: str, as_json: bool,
) -> None:
    """Sign URL for CloudFront (canned or custom policy), or make signed cookies for it."""
    from cdn.signing import Policy, load_private_key, signed_cookies, signed_url
    from cdn.timeparse import parse_cidr, parse_time
    now = int(time.time())
    policy = Policy(
        resource=resource or url,
        expires=parse_time(expires, now),
        starts=parse_time(starts, now) if starts else None,
        ip_range=parse_cidr(ip_range) if ip_range else None,
    )
    key = load_private_key(private_key.read_bytes())
    if cookies:
        values = signed_cookies(key_pair_id, key, policy, hash_name)
        if as_json:
            click.echo(json.dumps({"cookies": values, "policy": policy.statement()}, indent=2))
        else:
            for name, value in values.items():
                click.echo(f"Set-Cookie: {name}={value}; Path=/; Secure; HttpOnly")
        return
    signed = signed_url(url, key_pair_id, key, policy, hash_name)
    if as_json:
        click.echo(json.dumps({"url": signed, "canned": policy.canned,
                               "policy": policy.statement()}, indent=2))
    else:
        click.echo(signed)


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressSink | None]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    if quiet or not err_console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def sink(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, detail="")
            unit, scale = _UNITS.get(stage, ("", 1.0))
            detail = f"{done / scale:.0f}/{total / scale:.0f}{unit}"
            bar.update(tasks[stage], completed=done, total=total, detail=detail)

        yield sink


def _package_doc(result: PackageResult) -> dict[str, Any]:
    release = result.release
    return {
        "output": str(result.output),
        "seconds": round(result.seconds, 3),
        "duration": release.duration,
        "files": len(release.files),
        "bytes": release.total_bytes,
        "renditions": [asdict(r) for r in release.renditions],
        "protection": asdict(release.protection) if release.protection else None,
    }


def _render_package(result: PackageResult, as_json: bool) -> None:
    from rich.table import Table
    release = result.release
    if as_json:
        click.echo(json.dumps(_package_doc(result), indent=2))
        return
    table = Table(title=f"{result.output} ({release.duration:.2f} s in {result.seconds:.1f} s)")
    for col in ("rendition", "codec", "size", "peak kb/s", "avg kb/s", "segments"):
        table.add_column(col, justify="right" if col != "rendition" else "left")
    for r in release.renditions:
        size = f"{r.width}x{r.height}@{r.frame_rate}" if r.kind == "video" else (
            f"{r.channels}ch {r.sample_rate} Hz")
        table.add_row(r.id, r.codec, size, f"{r.bandwidth / 1000:.0f}",
                      f"{r.average_bandwidth / 1000:.0f}", str(r.segments))
    out_console.print(table)
    out_console.print(
        f"{len(release.files)} files, {release.total_bytes / 1e6:.1f} MB; "
        "manifests: "
        + ", ".join(f.path for f in release.files if f.role in ("multivariant", "mpd"))
    )


# --- probe, score, gate (issue 6): regional delivery probes, multi-CDN scoring, CI gates ---


def _probe_config(path: Path | None) -> ProbeConfig:
    from probes.config import default_config_path, load_config
    return load_config(path if path is not None else default_config_path())


@contextmanager
def _unit_progress(quiet: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    if quiet or not err_console.is_terminal:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@cdnpack.command("probe")
@click.option("--region", required=True, help="Region id from the config (where this runs).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Probe config (default: ./regions.yaml, else the repository's).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="JSONL results file (default: probe-REGION.jsonl), written atomically.")
@click.option("--results", "results_url", metavar="s3://BUCKET/PREFIX",
              help="Also append this run as a new object under an S3 prefix.")
@click.option("--endpoint-url", help="S3-compatible endpoint for --results.")
@click.option("--samples", type=click.IntRange(min=1), help="Override probe.samples.")
@json_option
def probe_command(region: str, config_path: Path | None, output: Path | None,
                  results_url: str | None, endpoint_url: str | None, samples: int | None,
                  as_json: bool) -> None:
    """Probe every CDN from REGION: timed fetches and player-like video sessions, as JSONL."""
    from probes.results import jsonl, parse_records, write_atomic
    from probes.run import probe_region
    from probes.s3store import append_run
    from probes.score import scorecard
    config = _probe_config(config_path)
    if samples is not None:
        config = config.with_samples(samples)
    config.region(region)  # unknown region: exit 2 before any traffic
    with _unit_progress(as_json, f"probe {region}") as sink:
        run = probe_region(config, region, sink)
    text = jsonl(run.lines)
    target = output or Path(f"probe-{region}.jsonl")
    write_atomic(target, text)
    stored = None
    if results_url:
        key = f"{region}/{run.started_at.replace(':', '')}-{run.run_id}.jsonl"
        stored = append_run(results_url, key, text.encode(), endpoint_url)
    card = scorecard(parse_records((f"run {run.run_id}", x) for x in run.lines), config)
    if as_json:
        doc = {
            "run_id": run.run_id, "region": run.region, "output": str(target), "stored": stored,
            "seconds": round(run.seconds, 3), "units": run.units, "completed": run.completed,
            "abandoned": run.abandoned, "deadline_hit": run.deadline_hit,
            "fetches": run.fetches, "errors": run.errors, "lag_max_s": round(run.lag.max, 6),
        }
        click.echo(json.dumps(doc, indent=2))
        return
    _render_scorecard(card, f"probe {region}: {run.fetches} fetches in {run.seconds:.1f} s")
    out_console.print(f"results: {target}" + (f", {stored}" if stored else ""))
    lagged = run.lines[0]["lagged"]
    if lagged > run.fetches / 10:
        out_console.print(f"[yellow]{lagged} of {run.fetches} fetches were timed while the "
                          "event loop lagged; their timings are left out of percentiles. "
                          "Lower probe.concurrency or give the prober more CPU.[/yellow]")
    if run.deadline_hit:
        out_console.print(f"[yellow]deadline reached: {run.abandoned} of {run.units} units "
                          "not completed[/yellow]")


@cdnpack.command("score")
@click.argument("results", nargs=-1, required=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config for budgets and audience weights (default: regions.yaml).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@click.option("--prometheus", type=click.Path(path_type=Path),
              help="Write Prometheus text exposition here (atomically; textfile collector).")
@click.option("--html", "html_path", type=click.Path(path_type=Path),
              help="Write an HTML report (heatmap, TTFB distributions) here.")
@json_option
def score_command(results: tuple[str, ...], config_path: Path | None, endpoint_url: str | None,
                  prometheus: Path | None, html_path: Path | None, as_json: bool) -> None:
    """Score RESULTS (JSONL files or s3://BUCKET/PREFIX): percentiles, scores, rankings.

    score = 100 x availability x (0.4 T + 0.3 S + 0.3 R), each term budget/(budget+p95)
    (for throughput p50/(p50+budget)); see probes/score.py.
    """
    from probes.report import html_report, prometheus_text
    from probes.results import read_results, write_atomic
    from probes.score import scorecard
    config = _probe_config(config_path)
    card = scorecard(read_results(results, endpoint_url), config)
    if prometheus is not None:
        write_atomic(prometheus, prometheus_text(card))
    if html_path is not None:
        write_atomic(html_path, html_report(card))
    if as_json:
        click.echo(json.dumps(_scorecard_doc(card), indent=2))
    else:
        _render_scorecard(card, "cdnpack score")


@cdnpack.command("gate")
@click.argument("results", nargs=-1, required=True)
@click.option("--budgets", "config_path", type=click.Path(path_type=Path),
              help="Config holding the budgets (default: regions.yaml).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@click.option("--junit", type=click.Path(path_type=Path),
              help="Write JUnit XML: one testcase per region x CDN x budget.")
@json_option
def gate_command(results: tuple[str, ...], config_path: Path | None, endpoint_url: str | None,
                 junit: Path | None, as_json: bool) -> None:
    """Exit 0 when every budget holds for RESULTS, 1 when any is missed, 2 on bad input."""
    from probes.gate import enforce, evaluate, junit_xml, write_step_summary
    from probes.results import read_results, write_atomic
    from probes.score import scorecard
    config = _probe_config(config_path)
    card = scorecard(read_results(results, endpoint_url), config)
    verdict = evaluate(card, config)
    if junit is not None:
        write_atomic(junit, junit_xml(verdict))
    write_step_summary(verdict, card)
    if as_json:
        click.echo(json.dumps(_verdict_doc(verdict), indent=2))
    else:
        _render_verdict(verdict)
    enforce(verdict)


def _verdict_doc(verdict: Verdict) -> dict[str, Any]:
    return {"passed": verdict.passed,
            "checks": [{**asdict(c), "message": c.message} for c in verdict.checks]}


def _render_verdict(verdict: Verdict) -> None:
    """The missed and unmeasured checks; a pass is one line."""
    from rich.table import Table
    table = Table(title=f"cdnpack gate: {len(verdict.checks)} checks, "
                        f"{len(verdict.violations)} missed")
    for col in ("region", "CDN", "budget", "measured", "limit", "result"):
        table.add_column(col)
    for c in verdict.checks:
        if c.passed is not True:
            mark = "[red]MISSED[/red]" if c.passed is False else "[yellow]no data[/yellow]"
            table.add_row(c.region, c.cdn, c.budget, c.measured_text, c.limit_text, mark)
    if table.row_count:
        out_console.print(table)
    else:
        out_console.print(f"gate: all {len(verdict.checks)} budget checks passed")


def _millis(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _render_scorecard(card: Scorecard, title: str) -> None:
    from rich.table import Table
    table = Table(title=title)
    for col in ("region", "CDN", "rank", "score", "TTFB p50/p95/p99 ms", "startup p50/p95 ms",
                "Mb/s p50", "avail.", "errors"):
        table.add_column(col, justify="left" if col in ("region", "CDN", "errors") else "right")
    for region in card.regions:
        for c in region.cells:
            best = " *" if c.cdn == region.best else ""
            mbps = "-" if c.throughput.p50 is None else f"{c.throughput.p50 / 1e6:.1f}"
            errors = ", ".join(f"{k} {v}" for k, v in c.errors_by_class.items()) or "-"
            table.add_row(
                region.name, c.cdn + best, str(c.rank), f"{c.score:.1f}",
                f"{_millis(c.ttfb.p50)}/{_millis(c.ttfb.p95)}/{_millis(c.ttfb.p99)}",
                f"{_millis(c.startup.p50)}/{_millis(c.startup.p95)}", mbps,
                f"{c.availability * 100:.2f}%", errors,
            )
    out_console.print(table)
    out_console.print("overall (audience-weighted): " + ", ".join(
        f"{r.rank}. {r.cdn} {r.score:.1f}" for r in card.overall))


def _scorecard_doc(card: Scorecard) -> dict[str, Any]:
    def cell(c: Any) -> dict[str, Any]:
        doc = asdict(c)
        doc.pop("ttfb_samples")
        return doc

    return {
        "overall": [asdict(r) for r in card.overall],
        "regions": [{"id": r.id, "name": r.name, "weight": r.weight, "best": r.best,
                     "cells": [cell(c) for c in r.cells]} for r in card.regions],
    }


def _push_doc(result: PushResult) -> dict[str, Any]:
    uploaded = result.uploaded
    return {
        "destination": result.destination, "objects": len(result.plan),
        "uploaded": len(uploaded), "skipped": sum(p.action == "skip" for p in result.plan),
        "held": [p.key for p in result.plan if p.action == "hold"],
        "uploaded_bytes": sum(p.bytes for p in uploaded), "pruned": result.pruned,
        "verified": result.verified,
        "invalidations": [asdict(i) for i in result.invalidations],
        "seconds": round(result.seconds, 3),
    }


def _rollout_doc(result: RolloutResult) -> dict[str, Any]:
    return {
        "staged": _push_doc(result.staged),
        "candidates": result.candidates,
        "probes": [{"region": r.region, "run_id": r.run_id, "fetches": r.fetches,
                    "errors": r.errors, "seconds": round(r.seconds, 3), "results": str(path)}
                   for r, path in zip(result.runs, result.results, strict=True)],
        "scorecard": _scorecard_doc(result.card),
        "gate": _verdict_doc(result.verdict),
        "published": _push_doc(result.published) if result.published else None,
    }


def _render_rollout(result: RolloutResult) -> None:
    staged = result.staged
    out_console.print(
        f"staged {staged.destination}: {len(staged.uploaded)} objects uploaded, "
        f"{sum(p.action == 'skip' for p in staged.plan)} unchanged, verified; manifests held "
        "back, probed as " + ", ".join(result.candidates.values()))
    fetches = sum(r.fetches for r in result.runs)
    _render_scorecard(result.card, f"staged release: {fetches} fetches from "
                                   f"{len(result.runs)} regions")
    _render_verdict(result.verdict)
    if result.published is None:
        out_console.print("[red]not published[/red]: the multivariant playlist and MPD stay "
                          "unpublished (staged candidates deleted)")
        return
    held = [p for p in result.published.plan if p.phase == 3]
    out_console.print(f"[green]published[/green] {', '.join(p.key for p in held)}")
    for inv in result.published.invalidations:
        out_console.print(f"invalidation {inv.id}: {len(inv.paths)} paths, {inv.status}")


# --- keys: the local keystore and CPIX exchange (issue 4) --------------------------------------


def _keystore_option(f: F) -> F:
    return click.option(
        "--keystore", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Keystore directory (default: $XDG_DATA_HOME/cdnpack/keys).",
    )(f)


def _open_keystore(path: Path | None) -> Keystore:
    from packager.keys.model import Keystore
    return Keystore(path)


def _parse_kid(text: str) -> bytes:
    import uuid

    from packager.errors import InputError
    try:
        return uuid.UUID(text.strip()).bytes
    except ValueError:
        raise InputError(f"KID {text!r} is not 32 hex digits or a UUID") from None


def _stored_doc(stored: StoredKey, reveal: bool = False) -> dict[str, Any]:
    """A keystore entry for output: the key itself only when asked for with --reveal."""
    doc: dict[str, Any] = {
        "kid": stored.key.kid_uuid,
        "content_id": stored.content_id,
        "track_classes": [c.value for c in stored.track_classes],
        "created": stored.created,
    }
    if reveal:
        doc["key"] = stored.key.key.hex()
        doc["iv"] = None if stored.key.iv is None else stored.key.iv.hex()
    return doc


@cdnpack.group("keys")
def keys_group() -> None:
    """Content keys: generate, list, show, and exchange them as CPIX 2.3 documents."""


@keys_group.command("new")
@click.argument("content_id")
@click.option("--per-class", is_flag=True,
              help="One key per track class (AUDIO, SD, HD, UHD) instead of one for all.")
@_keystore_option
@json_option
def keys_new(content_id: str, per_class: bool, keystore: Path | None, as_json: bool) -> None:
    """Generate the keys of CONTENT_ID into the keystore."""
    from rich.table import Table

    from packager.errors import InputError
    from packager.keys.model import KeySet
    store = _open_keystore(keystore)
    if any(s.content_id == content_id for s in store):
        raise InputError(f"keystore {store.root}: content id {content_id!r} already has keys")
    keyset = KeySet.generate(content_id, per_class=per_class)
    store.put_keyset(keyset)
    rows = [{"track_class": c.value, "kid": k.kid_uuid} for c, k in keyset.keys.items()]
    if as_json:
        click.echo(json.dumps({"content_id": content_id, "keystore": str(store.root),
                               "keys": rows}, indent=2))
        return
    table = Table(title=f"keys of {content_id}")
    table.add_column("class")
    table.add_column("KID", min_width=36, no_wrap=True)
    for row in rows:
        table.add_row(row["track_class"], row["kid"])
    out_console.print(table)


@keys_group.command("list")
@_keystore_option
@json_option
def keys_list(keystore: Path | None, as_json: bool) -> None:
    """Every key in the keystore (KIDs and what they are for; never the keys)."""
    from rich.table import Table
    docs = [_stored_doc(s) for s in _open_keystore(keystore)]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    table = Table(title="keystore")
    table.add_column("KID", min_width=36, no_wrap=True)
    for column in ("content id", "classes", "created"):
        table.add_column(column)
    for d in docs:
        table.add_row(d["kid"], d["content_id"] or "-", "+".join(d["track_classes"]) or "-",
                      d["created"])
    out_console.print(table)


@keys_group.command("show")
@click.argument("kid")
@click.option("--reveal", is_flag=True, help="Print the key itself (it is secret).")
@_keystore_option
@json_option
def keys_show(kid: str, reveal: bool, keystore: Path | None, as_json: bool) -> None:
    """One key's KID, content id and classes; the key value only with --reveal."""
    doc = _stored_doc(_open_keystore(keystore).get(_parse_kid(kid)), reveal)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for name, value in doc.items():
        shown = "+".join(value) or "-" if isinstance(value, list) else value
        click.echo(f"{name}: {'-' if shown is None else shown}")


@keys_group.command("export")
@click.argument("content_id")
@click.option("--cpix", "cpix_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The CPIX 2.3 document to write (mode 0600: it holds keys).")
@click.option("--scheme", type=click.Choice(["cenc", "cbcs"]), default="cenc",
              show_default=True, help="Protection scheme the DRM signaling is for.")
@click.option("--la-url", help="PlayReady licence acquisition URL for its header.")
@click.option("--widevine-content-id", metavar="0xHEX|TEXT",
              help="content_id of the Widevine pssh, as given to `package`.")
@_keystore_option
@json_option
def keys_export(content_id: str, cpix_path: Path, scheme: str, la_url: str | None,
                widevine_content_id: str | None, keystore: Path | None, as_json: bool) -> None:
    """Write the keys of CONTENT_ID and their DRM signaling as a CPIX 2.3 document."""
    from packager.keys.cpix import export_cpix, write_cpix
    from packager.keys.source import parse_widevine_content_id
    keyset = _open_keystore(keystore).keyset(content_id)
    wv_id = parse_widevine_content_id(widevine_content_id) if widevine_content_id else None
    write_cpix(cpix_path, export_cpix(keyset, scheme, la_url=la_url,
                                      widevine_content_id=wv_id))
    kids = [k.kid_uuid for k in keyset.distinct_keys]
    if as_json:
        click.echo(json.dumps({"path": str(cpix_path), "content_id": content_id,
                               "kids": kids}, indent=2))
        return
    out_console.print(f"wrote {cpix_path}: {len(kids)} key(s) of {content_id}")


@keys_group.command("import")
@click.argument("cpix_file", type=click.Path(dir_okay=False, path_type=Path))
@_keystore_option
@json_option
def keys_import(cpix_file: Path, keystore: Path | None, as_json: bool) -> None:
    """Store the keys of a CPIX document; a KID already stored with another key is refused
    before anything is written."""
    from packager.keys.cpix import read_cpix
    from packager.keys.model import KeyConflictError
    doc = read_cpix(cpix_file)
    store = _open_keystore(keystore)
    stored = {s.key.kid: s.key for s in store}
    for key in doc.keys:
        known = stored.get(key.kid)
        if known is not None and (known.key != key.key or known.iv != key.iv):
            raise KeyConflictError(
                f"{cpix_file}: KID {key.kid_uuid} is already in keystore {store.root} with a "
                "different key; nothing imported"
            )
    added = [k.kid_uuid for k in doc.keys
             if store.put(k, doc.content_id, doc.classes.get(k.kid, ()))]
    present = [k.kid_uuid for k in doc.keys if k.kid_uuid not in added]
    if as_json:
        click.echo(json.dumps({"content_id": doc.content_id, "imported": added,
                               "already_present": present,
                               "keyset": doc.keyset is not None}, indent=2))
        return
    out_console.print(f"imported {len(added)} key(s) from {cpix_file}"
                      + (f", {len(present)} already present" if present else ""))


if __name__ == "__main__":
    main()
