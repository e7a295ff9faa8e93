"""The cdnpack command line: parse options, call one job, render its result; no business logic."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from packager.errors import CdnpackError, ToolError
from packager.ladder import PRESETS
from packager.pipeline import FORMATS, PackageRequest, PackageResult, ProgressSink, package
from packager.sample import ClipSpec, make_clip
from packager.tools import TOOL_ENV, ffmpeg_encoders, find_tool, tool_version

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True)
out_console = Console()

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
@json_option
def package_command(
    source: Path, output: Path, ladder: str, segment_duration: float,
    formats: tuple[str, ...], copy: bool, force: bool, as_json: bool,
) -> None:
    """Package SOURCE into an ABR release (CMAF segments, HLS and DASH) at OUTPUT."""
    request = PackageRequest(
        source=source, output=output, ladder=ladder, segment_duration=segment_duration,
        formats=formats or FORMATS, copy=copy, force=force,
    )
    with _progress(quiet=as_json) as sink:
        result = package(request, sink)
    _render_package(result, as_json)


@cdnpack.command()
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("cdnpack-demo"),
              show_default=True, help="Where the demo release goes (replaced if present).")
@click.option("--duration", type=float, default=20.0, show_default=True,
              help="Length of the generated source in seconds.")
@json_option
def demo(output: Path, duration: float, as_json: bool) -> None:
    """Package an embedded generated source (moving picture and tone) end to end."""
    output.mkdir(parents=True, exist_ok=True)
    source = make_clip(output / "source.mp4", ClipSpec(duration=duration, width=1280, height=720))
    request = PackageRequest(source=source, output=output / "release", force=True)
    with _progress(quiet=as_json) as sink:
        result = package(request, sink)
    _render_package(result, as_json)


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressSink | None]:
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
            unit = "s" if stage == "transcode" else " tracks"
            bar.update(tasks[stage], completed=done, detail=f"{done:.0f}/{total:.0f}{unit}")

        yield sink


def _render_package(result: PackageResult, as_json: bool) -> None:
    release = result.release
    if as_json:
        doc = {
            "output": str(result.output),
            "seconds": round(result.seconds, 3),
            "duration": release.duration,
            "files": len(release.files),
            "bytes": release.total_bytes,
            "renditions": [asdict(r) for r in release.renditions],
        }
        click.echo(json.dumps(doc, indent=2))
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


if __name__ == "__main__":
    main()
