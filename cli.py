"""The cdnpack command line: parse options, call one job, render its result; no business logic.

Each command imports its job inside its body: `cdnpack push` must not pay for aiohttp and the
packager, nor `cdnpack probe` for boto3 (start-up is measured in bench/push.py). What a result
looks like, for people and for `--json`, is render/'s job.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading


def _stopped_while_loading(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM while cdnpack is still loading (main() has not taken the signals
    over yet): nothing has started, so it ends at once, in one line, with no traceback."""
    os.write(2, b"cdnpack: interrupted\n" if signum == signal.SIGINT else b"cdnpack: terminated\n")
    os._exit(128 + signum)


# Only as the command (the console script, or python -m cli), never when imported (tests).
if __name__ == "__main__" or sys.argv[0].rpartition("/")[2] == "cdnpack":
    for _sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(_sig) is not signal.SIG_IGN:
            signal.signal(_sig, _stopped_while_loading)

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from packager.errors import CdnpackError, ToolError
from packager.interrupts import Interrupted, stopped_by
from packager.interrupts import install as install_interrupts
from render.console import emit_json, fail, progress, unit_progress

if TYPE_CHECKING:
    from datetime import datetime

    from cdn.publish import PushRequest
    from packager.keys.keystore import Keystore
    from packager.output.pipeline import PackageRequest
    from probes.config import ProbeConfig
    from probes.gate import RumCells
    from testbed.demo import DemoResult

F = TypeVar("F", bound=Callable[..., Any])

#: The ladder presets (packager.encoding.ladder.PRESETS) and manifest formats
#: (packager.output.release.FORMATS) the options offer, written out so that the CLI's start
#: (every --help, every push) does not load the packager for them; tests/test_cli.py holds
#: them together.
PRESET_NAMES = ("default", "compact")
FORMATS = ("hls", "dash")
#: Path types shared by every option that takes one: each click.Path() looks its name up in
#: gettext's catalogues on disk: 55 instances cost 3 ms of every command's start.
PATH = click.Path(path_type=Path)
FILE_PATH = click.Path(dir_okay=False, path_type=Path)
DIR_PATH = click.Path(file_okay=False, path_type=Path)


def main() -> None:
    """Console-script entry: every CdnpackError becomes one line on stderr and its exit code;
    Ctrl-C and SIGTERM (Kubernetes, CI cancel) unwind alike, then say so in one line
    (packager/interrupts.py)."""
    try:
        _main()
    finally:
        # Python's exit runs the cycle collector over every object still alive (modules,
        # classes, a listing's thousands of objects), 12-15 ms of a no-op push or a short
        # `package` with nothing left to free. It skips frozen objects; modules are still torn
        # down, files flushed and closed, atexit handlers run. Not while another thread is
        # still running (a push that failed with its listing out): a daemon thread importing
        # modules while a frozen heap is torn down crashed the interpreter (6 exits of 100).
        if threading.active_count() == 1:
            gc.freeze()


def _main() -> None:
    install_interrupts()
    try:
        _run(sys.argv[1:])
    except Interrupted as exc:
        if exc.signum == signal.SIGINT and sys.stderr.isatty():
            click.echo(err=True)  # the terminal's ^C echo ends its own line
        fail(exc.message)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `cdnpack ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        sys.exit(1)
    except CdnpackError as exc:
        fail(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # raised by Python's own handler (asyncio's, a library's)
        fail("interrupted")
        sys.exit(130)
    except Exception as exc:
        cause = _interrupted_in(exc)
        if cause is not None:  # a signal met code that wraps what it raises (a class body's
            fail(cause.message)  # __set_name__ wraps it in RuntimeError): still a stop
            sys.exit(cause.exit_code)
        logging.getLogger("cdnpack").debug("internal error", exc_info=True)
        fail(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        sys.exit(4)


def _interrupted_in(exc: BaseException) -> Interrupted | None:
    """The Interrupted an exception was raised from, if any."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        if isinstance(found, Interrupted):
            return found
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug with commands).")
def cdnpack(verbose: int) -> None:
    """Package, push and probe video releases for worldwide multi-CDN delivery."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(message)s", handlers=[_RichOnFirstRecord()])


class _RichOnFirstRecord(logging.Handler):
    """rich's log handler, made when the first record is emitted: most runs log nothing, and
    rich's logging costs every command 10 ms to import."""

    def __init__(self) -> None:
        super().__init__()
        self._rich: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._rich is None:
            from rich.logging import RichHandler

            from render.console import err_console
            self._rich = RichHandler(console=err_console)
            self._rich.setFormatter(self.formatter)
        self._rich.handle(record)


class Duration(click.ParamType[float]):
    """A duration option, read by the one parser (packager/durations.py) into seconds; a
    mistake is one line naming the option, exit 2 (an InputError, not click's usage text)."""

    name = "duration"

    def __init__(self, **limits: Any) -> None:
        self.limits = limits

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        from packager.durations import parse_duration
        if isinstance(value, float):
            return value
        option = param.opts[0] if param is not None and param.opts else "duration"
        return parse_duration(value, option, **self.limits)


#: Options whose help has always said seconds: a bare number still means seconds.
SECONDS = Duration(bare_seconds=True)


def _run(args: list[str]) -> None:
    """click's Command.main without its handling of Ctrl-C: it writes a blank line to stderr
    and raises Abort, and which signal stopped the command is lost. `main` says how a command
    ended, in one line."""
    with cdnpack.make_context("cdnpack", args) as ctx:
        cdnpack.invoke(ctx)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(f)


def _options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Apply a list of click options in the order they are listed (one definition, shared by
    every command that takes them)."""
    def decorate(f: F) -> F:
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _names(options: list[Callable[[Any], Any]]) -> frozenset[str]:
    def probe() -> None: ...
    for option in options:
        option(probe)
    return frozenset(p.name for p in getattr(probe, "__click_params__", []) if p.name)


def _from_env(param: str) -> bool:
    source = click.get_current_context().get_parameter_source(param)
    return source == click.core.ParameterSource.ENVIRONMENT


def _split(options: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """Take the options named in `names` out of `options` (release: package vs push options)."""
    return {k: options.pop(k) for k in list(options) if k in names}


@cdnpack.command()
@json_option
def doctor(as_json: bool) -> None:
    """Show the tools cdnpack will run, their versions, and the encoders available."""
    from packager.tools import check_tools
    from render.doctor import doctor_doc, show_doctor
    checks, problems = check_tools()
    if as_json:
        emit_json(doctor_doc(checks, problems))
    else:
        show_doctor(checks)
    if problems:
        raise ToolError("; ".join(problems))


PACKAGE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--ladder", default="default", show_default=True,
                 help=f"Preset ({', '.join(PRESET_NAMES)}), per-title (rungs placed on the "
                      "title's measured VMAF curves) or a YAML ladder file."),
    click.option("--codec", "codecs", multiple=True, metavar="h264|hevc|av1",
                 help="Video codec of every rung (repeatable: one set of renditions per codec, "
                      "sharing audio, text and the segment plan). Default: the ladder's "
                      "(h264)."),
    click.option("--segment-duration", type=SECONDS, default="4s", show_default=True,
                 metavar="DURATION",
                 help="Target segment duration (keyframe every segment): 4s, 2.5s, 6 (seconds)."),
    click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
                 help="Manifest formats (repeatable); both by default."),
    click.option("--copy", is_flag=True,
                 help="No transcode: re-package H.264/HEVC/AV1 + AAC as is."),
    click.option("--vmaf/--no-vmaf", default=True, show_default=True, envvar="CDNPACK_VMAF",
                 show_envvar=True,
                 help="Measure every video rendition's VMAF (libvmaf, vmaf_v0.6.1) on the "
                      "delivered track: release.json and the HLS SCORE."),
    click.option("--chunks", default="auto", show_default=True, metavar="auto|N",
                 help="Encode the video in N chunks of whole segments, one job each, run "
                      "side by side (1: the whole title in one ffmpeg); auto chunks a title "
                      "of two minutes or more when more than one worker can run them."),
    click.option("--thumbnails", metavar="INTERVAL[:CxR[:HEIGHT]]",
                 help="JPEG thumbnail tile sheets for scrubbing, e.g. 10s or 10s:5x5:240 "
                      "(a thumbnail every INTERVAL, C columns x R rows a sheet [5x5], HEIGHT "
                      "pixels [180]); signalled in HLS and DASH. Default: none."),
    click.option("--encrypt", metavar="cenc|cbcs|aes-128",
                 help="cenc (AES-CTR) or cbcs (AES-CBC 1:9) CMAF; aes-128: HLS MPEG-TS segments."),
    click.option("--key", envvar="CDNPACK_KEY", show_envvar=True, metavar="KID:KEY",
                 help="Content key as KID_HEX:KEY_HEX (prefer the env var: no shell history)."),
    click.option("--iv", metavar="HEX",
                 help="cbcs constant IV (16 bytes); cenc / aes-128: the first sample's/segment's."),
    click.option("--key-uri", metavar="URI", help="aes-128: key URI written into EXT-X-KEY."),
    click.option("--keys", "key_source", metavar="generate|raw|cpix:FILE|speke:URL",
                 help="generate: new keys; raw: the --key KID:KEY; cpix:FILE: a CPIX 2.3 "
                      "document's keys; speke:URL: a SPEKE v2.0 key server's. All but raw are "
                      "stored in the keystore first."),
    click.option("--per-class", is_flag=True,
                 help="--keys generate|speke: one key per track class (AUDIO, SD, HD, UHD)."),
    click.option("--class-thresholds", metavar="SD=H,HD=H",
                 help="Largest frame height of the SD and HD classes (default SD=576,HD=1080)."),
    click.option("--key-server-timeout", type=SECONDS, metavar="DURATION",
                 help="--keys speke: total time for the exchange [30s]."),
    click.option("--speke-sigv4-region", metavar="REGION",
                 help="--keys speke: sign with AWS SigV4 (execute-api) for API Gateway in REGION."),
    click.option("--playready-la-url", metavar="URL",
                 help="PlayReady licence acquisition URL written into its header (LA_URL)."),
    click.option("--widevine-content-id", metavar="0xHEX|TEXT",
                 help="content_id of the Widevine pssh: 0x-prefixed hex, else UTF-8 text."),
    click.option("--keystore", type=PATH,
                 help="Keystore directory (default: under the user's data dir)."),
    click.option("--content-id", help="Title the keys belong to in the keystore; a title that "
                 "already has keys keeps them (default: the output directory's name)."),
    click.option("--drm", metavar="SYSTEMS",
                 help="widevine,playready,clearkey,fairplay (default: all but fairplay for "
                      "cenc, all for cbcs)."),
    # Localized releases: languages beyond the source's own streams (packager/title).
    click.option("--title", "title_file", type=PATH, metavar="FILE.yaml",
                 help="Languages and side files as one YAML file (see README)."),
    click.option("--audio", "dubs", multiple=True, metavar="LANG=FILE",
                 help="A dub: the first audio stream of FILE, in BCP 47 language LANG "
                      "(repeatable)."),
    click.option("--described-audio", "described", multiple=True, metavar="LANG=FILE",
                 help="Audio description for the blind (repeatable)."),
    click.option("--subtitles", multiple=True, metavar="LANG=FILE",
                 help="Subtitles: WebVTT, SRT, TTML (IMSC1 text) or ASS (repeatable)."),
    click.option("--forced-subtitles", "forced", multiple=True, metavar="LANG=FILE",
                 help="Forced narratives (signs, foreign dialogue) (repeatable)."),
    click.option("--captions", multiple=True, metavar="LANG=FILE",
                 help="SDH / closed captions (repeatable)."),
    click.option("--language", metavar="LANG",
                 help="The source's own audio language, when its tag is missing or wrong."),
    click.option("--default-language", metavar="LANG",
                 help="The DEFAULT audio and subtitle language (default: the source's)."),
    click.option("--steering", is_flag=True,
                 help="Content steering: every CDN of the config is a pathway (HLS PATHWAY-ID, "
                      "DASH BaseURL@serviceLocation) and players ask its steering server."),
    click.option("--rights", "rights_file", type=PATH,
                 metavar="FILE.yaml",
                 help="Territories and windows (a title file's `rights:` does the same): a "
                      "multivariant playlist and an MPD per grant, holding what it allows."),
]
_PACKAGE_NAMES = _names(PACKAGE_OPTIONS)

PUSH_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--distribution",
                 help="CloudFront distribution id: invalidate changed manifests."),
    click.option("--wait", is_flag=True, help="Wait until the invalidation has completed."),
    click.option("--manifest-max-age", default="30s", show_default=True, metavar="DURATION",
                 type=Duration(bare_seconds=True, allow_minimum=True, maximum=86400,
                               whole=True),
                 help="Cache-Control max-age of playlists and MPD, whole seconds up to 1d "
                      "(segments are immutable)."),
    # 32 is cdn.s3.DEFAULT_CONCURRENCY (tests/test_cli.py holds them together), written out so
    # that the CLI's start does not import botocore for every command.
    click.option("--concurrency", type=click.IntRange(1, 256), default=32, show_default=True,
                 help="Uploads in flight (more for a distant origin)."),
    click.option("--retry-mode", type=click.Choice(["standard", "adaptive"]),
                 default="adaptive", show_default=True,
                 help="Retry mode (503 SlowDown, resets, throttling); adaptive also slows "
                      "down when throttled."),
    click.option("--max-attempts", type=click.IntRange(1, 50), default=10, show_default=True,
                 help="Attempts per request before the push fails."),
    click.option("--endpoint-url", help="Any S3-compatible origin (MinIO, R2, a local moto)."),
    click.option("--profile", help="AWS profile."),
    click.option("--region", help="AWS region."),
]
_PUSH_NAMES = _names(PUSH_OPTIONS)


@cdnpack.command("package")
@click.argument("source", type=PATH)
@click.option("-o", "--output", type=PATH, required=True,
              help="Release directory to create (built aside, renamed into place).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--config", "config_path", type=PATH,
              help="--steering: the CDNs and steering server; --rights: the regions a grant "
                   "may name (default: regions.yaml).")
@_options(PACKAGE_OPTIONS)
@json_option
def package_command(source: Path, output: Path, force: bool, config_path: Path | None,
                    as_json: bool, **options: Any) -> None:
    """Package SOURCE into an ABR release (CMAF segments, HLS and DASH) at OUTPUT."""
    from packager.encoding.media import probe_early
    probe_early(source)  # ffprobe runs on another core while the packager loads
    from packager.output.pipeline import package
    from render.package import package_doc, show_package
    request = _package_request(source, output, force, options, config_path)
    with progress(quiet=as_json) as sink:
        result = package(request, sink)
    if as_json:
        emit_json(package_doc(result))
    else:
        show_package(result)


def _package_request(source: Path, output: Path, force: bool, options: dict[str, Any],
                     config_path: Path | None = None) -> PackageRequest:
    """The `package` options (shared by `release`) as a PackageRequest; keys are resolved and
    stored while it is built, before anything is encoded."""
    from packager.encoding.chunks import parse_chunks
    from packager.encoding.codecs import codec_names
    from packager.encoding.thumbnails import parse_thumbnails
    from packager.keys.source import KeyOptions, encryption_for
    from packager.output.pipeline import PackageRequest
    from packager.title.file import resolve_title
    chunks = parse_chunks(options.pop("chunks"))
    steering = None
    if options.pop("steering"):
        from steering.documents import manifest_spec
        steering = manifest_spec(_probe_config(config_path))
    media = {k: options.pop(k) for k in ("ladder", "segment_duration", "formats", "copy",
                                          "codecs", "vmaf")}
    # Checked before any key is made or stored (below): a bad codec leaves nothing behind.
    codecs = codec_names(media["codecs"]) or None
    title_file = options.pop("title_file")
    title = resolve_title(
        title_file,
        {"--audio": options.pop("dubs"), "--described-audio": options.pop("described"),
         "--subtitles": options.pop("subtitles"), "--forced-subtitles": options.pop("forced"),
         "--captions": options.pop("captions")},
        options.pop("language"), options.pop("default_language"))
    rights_file, rights = options.pop("rights_file"), None
    if rights_file is not None or title_file is not None:  # (YAML only for YAML files)
        from packager.rights.file import rights_for
        rights = rights_for(rights_file, title_file, lambda: _regions(config_path))
    # Parsed before any key is made or stored: a bad value leaves nothing behind.
    thumbnails = options.pop("thumbnails")
    thumbnail_spec = parse_thumbnails(thumbnails) if thumbnails is not None else None
    keys = KeyOptions(encrypt=options.pop("encrypt"), key_from_env=_from_env("key"), **options)
    return PackageRequest(
        source=source, output=output, ladder=media["ladder"],
        segment_duration=media["segment_duration"], formats=media["formats"] or FORMATS,
        copy=media["copy"], codecs=codecs, vmaf=media["vmaf"], force=force, title=title,
        encryption=encryption_for(keys, output),
        thumbnails=thumbnail_spec,
        steering=steering,
        chunks=chunks,
        rights=rights,
    )


@cdnpack.command()
@click.option("-o", "--output", type=PATH, default=Path("cdnpack-demo"),
              show_default=True, help="Work directory: source, release, keys, results, report.")
@click.option("--duration", type=SECONDS, default="20s", show_default=True,
              metavar="DURATION", help="Length of the generated source (20s, 1m).")
@click.option("--serve", is_flag=True,
              help="Then keep the local origin, edges and steering server up and serve the "
                   "preview page (`cdnpack preview`), which plays the release through its edges, "
                   "until Ctrl-C.")
@click.option("--listen", default="127.0.0.1:8800", show_default=True, metavar="HOST:PORT",
              help="--serve: the preview's address (loopback: its page gets the keys).")
@json_option
def demo(output: Path, duration: float, serve: bool, listen: str, as_json: bool) -> None:
    """The release flow on this machine alone: an embedded source packaged with cbcs and
    generated keys, staged on a local S3 origin, probed from six regions through two emulated
    CDNs, gated on the budgets of regions.yaml, then published and invalidated."""
    from contextlib import ExitStack

    from probes.config import SHIPPED_CONFIG
    from probes.gate import enforce
    from testbed.demo import run_demo
    if serve:
        from preview.server import check_listen
        check_listen(listen, keys=True)  # a mistake is one line before minutes of work
    with ExitStack() as world:
        with progress(quiet=as_json) as sink:
            result = world.enter_context(run_demo(output, duration, SHIPPED_CONFIG, sink))
        _show_demo(result, output, as_json)
        enforce(result.rollout.verdict)
        if serve:
            _serve_demo(result, listen, as_json)


def _show_demo(result: DemoResult, output: Path, as_json: bool) -> None:
    from packager.files import write_atomic
    from probes.report import html_report
    from render.package import package_doc, show_package
    from render.release import rollout_doc, show_rollout
    from render.rights import demo_rights_doc, show_demo_rights
    from render.steering import demo_steering_doc, show_demo_steering
    report = output / "report.html"
    write_atomic(report, html_report(result.rollout.card, "cdnpack demo: delivery scorecard"))
    steering = result.steering
    if as_json:
        emit_json({"package": package_doc(result.package), "release": rollout_doc(result.rollout),
                   "report": str(report), "config": str(result.config),
                   "keystore": str(result.keystore), "distribution": result.distribution,
                   "steering": demo_steering_doc(steering.url, steering.plan, steering.config,
                                                 steering.served),
                   "rights": demo_rights_doc(result.rights.published, result.rights.viewers,
                                             result.rights.note)})
    else:
        show_package(result.package)
        show_rollout(result.rollout)
        show_demo_steering(steering.url, steering.plan, steering.config, steering.served)
        show_demo_rights(result.rights.published, result.rights.viewers, result.rights.note)
        from render.console import out_console
        out_console.print(
            f"report: {report}; probe results: {result.rollout.results[0].parent}; "
            f"config: {result.config}; keys: {result.keystore} (outside the release tree)")


def _serve_demo(result: DemoResult, listen: str, as_json: bool) -> None:
    """The demo's release in the preview, played as published: through the edges and the
    steering server, each region's order as the demo planned it."""
    from preview.regions import from_plan
    from preview.server import preview_request
    from preview.server import run as run_preview
    from render.preview import show_listening, show_stopped
    steering = result.steering
    request = preview_request(result.package.output, listen, result.keystore, None, "published",
                              lambda: from_plan(steering.plan, steering.config))
    stopped = run_preview(request, lambda url: show_listening(url, request, as_json))
    show_stopped(stopped, as_json)
    if stopped.signal is not None:
        stopped_by(stopped.signal)  # the world stops on the way out


@cdnpack.command("push")
@click.argument("release_dir", type=PATH)
@click.argument("destination")
@click.option("--dry-run", is_flag=True, help="Print the plan; upload nothing.")
@click.option("--prune", is_flag=True,
              help="After the new manifests are live, delete objects the release no longer lists.")
@_options(PUSH_OPTIONS)
@json_option
def push_command(release_dir: Path, destination: str, dry_run: bool, prune: bool,
                 as_json: bool, **options: Any) -> None:
    """Push RELEASE_DIR to DESTINATION (s3://BUCKET/PREFIX): segments first, manifests last."""
    from cdn.publish import push
    from render.push import push_command_doc, show_push
    request = _push_request(release_dir, destination, dry_run=dry_run, prune=prune, **options)
    with progress(quiet=as_json or dry_run) as sink:
        result = push(request, sink)
    if as_json:
        emit_json(push_command_doc(result, dry_run))
    else:
        show_push(result, dry_run)


def _push_request(
    release_dir: Path, destination: str, *, distribution: str | None, wait: bool,
    dry_run: bool, prune: bool, manifest_max_age: float, concurrency: int, retry_mode: str,
    max_attempts: int, endpoint_url: str | None, profile: str | None, region: str | None,
) -> PushRequest:
    from cdn.publish import PushRequest
    from cdn.s3 import parse_s3_url
    return PushRequest(
        release_dir=release_dir,
        destination=parse_s3_url(destination),
        connection=_connection(endpoint_url, profile, region, retry_mode, max_attempts,
                               concurrency),
        manifest_max_age=int(manifest_max_age), distribution=distribution, wait=wait,
        dry_run=dry_run, prune=prune,
    )


def _connection(endpoint_url: str | None, profile: str | None, region: str | None,
                retry_mode: str = "adaptive", max_attempts: int = 10,
                concurrency: int = 32) -> Any:
    from cdn.s3 import Connection
    return Connection(endpoint_url=endpoint_url, profile=profile, region=region,
                      retry_mode=retry_mode, max_attempts=max_attempts, concurrency=concurrency)


@cdnpack.command("release")
@click.argument("source", type=PATH)
@click.argument("destination")
@click.option("-o", "--output", type=PATH, required=True,
              help="Release directory to build (as `package -o`).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--config", "config_path", type=PATH,
              help="Regions, CDNs, targets and budgets (default: regions.yaml).")
@click.option("--probe-region", "probe_regions", multiple=True, metavar="ID",
              help="Probe from these regions only (repeatable; default: every region).")
@click.option("--results-dir", type=DIR_PATH,
              help="Probe results, one JSONL per region (default: OUTPUT.probes beside OUTPUT).")
@click.option("--html", "html_path", type=FILE_PATH,
              help="Write the HTML scorecard here.")
@click.option("--junit", type=FILE_PATH,
              help="Write the gate as JUnit XML here.")
@click.option("--steering-destination", "steering_override", metavar="s3://BUCKET/PREFIX",
              help="--steering: where the steering documents go once the gate passes "
                   "(default: DESTINATION/steering).")
@_options(PACKAGE_OPTIONS)
@_options(PUSH_OPTIONS)
@json_option
def release_command(
    source: Path, destination: str, output: Path, force: bool, config_path: Path | None,
    probe_regions: tuple[str, ...], results_dir: Path | None, html_path: Path | None,
    junit: Path | None, steering_override: str | None, as_json: bool, **options: Any,
) -> None:
    """Package SOURCE, stage it at DESTINATION (s3://BUCKET/PREFIX), probe the staged release
    through every CDN of the config, and publish its multivariant playlist and MPD only when
    every budget holds: otherwise exit 1, manifests unpublished.

    Takes every `package` and `push` option (encryption, keys, ladder; endpoint, distribution).
    """
    from datetime import UTC, datetime

    from packager.files import write_atomic
    from packager.output.pipeline import package
    from probes.gate import enforce, junit_xml, write_step_summary
    from probes.report import html_report
    from release.flow import (
        RolloutRequest,
        check_regions,
        refuse_unlicensed,
        results_dir_for,
        rollout,
        steering_destination,
    )
    from render.package import package_doc, show_package
    from render.release import rollout_doc, show_rollout
    push_options = _split(options, _PUSH_NAMES)
    # Everything that can be refused is refused before anything is encoded or stored.
    results = results_dir_for(output, results_dir)
    config = _probe_config(config_path)
    check_regions(config, probe_regions)
    push_request = _push_request(output, destination, dry_run=False, prune=False,
                                 **push_options)
    steering = steering_destination(options["steering"], destination, steering_override)
    request = _package_request(source, output, force, _split(options, _PACKAGE_NAMES),
                               config_path)
    refuse_unlicensed(request.rights, datetime.now(UTC))
    with progress(quiet=as_json) as sink:
        packaged = package(request, sink)
        result = rollout(RolloutRequest(push_request, config, probe_regions, results,
                                        steering), sink)
    if html_path is not None:
        from render.quality import rate_quality_section
        write_atomic(html_path, html_report(
            result.card, sections=[rate_quality_section(packaged.release)]))
    if junit is not None:
        write_atomic(junit, junit_xml(result.verdict))
    write_step_summary(result.verdict, result.card)
    if as_json:
        emit_json({"package": package_doc(packaged), **rollout_doc(result)})
    else:
        show_package(packaged)
        show_rollout(result)
    enforce(result.verdict)


@cdnpack.command("sign")
@click.argument("url")
@click.option("--key-pair-id", required=True, help="CloudFront public key id (key group).")
@click.option("--private-key", type=PATH,
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
    from cdn.signing import policy_for, read_private_key, signed_cookies, signed_url
    from render.signing import show_cookies
    policy = policy_for(url, expires, starts, ip_range, resource)
    key = read_private_key(private_key)
    if cookies:
        values = signed_cookies(key_pair_id, key, policy, hash_name)
        if as_json:
            emit_json({"cookies": values, "policy": policy.statement()})
        else:
            show_cookies(values)
        return
    signed = signed_url(url, key_pair_id, key, policy, hash_name)
    if as_json:
        emit_json({"url": signed, "canned": policy.canned, "policy": policy.statement()})
    else:
        click.echo(signed)


# --- probe, score, gate: regional delivery probes, multi-CDN scoring, CI gates ----------------


def _probe_config(path: Path | None) -> ProbeConfig:
    from probes.config import default_config_path, load_config
    return load_config(path if path is not None else default_config_path())


def _regions(path: Path | None) -> dict[str, tuple[str, ...]]:
    """Region id -> countries of the config: what a grant's territories may name."""
    return {r.id: r.countries for r in _probe_config(path).regions}


def _s3(endpoint_url: str | None) -> Any:
    from probes.s3store import results_connection
    return results_connection(endpoint_url)


@cdnpack.command("probe")
@click.option("--region", required=True, help="Region id from the config (where this runs).")
@click.option("--config", "config_path", type=PATH,
              help="Probe config (default: ./regions.yaml, else the one shipped with cdnpack).")
@click.option("-o", "--output", type=PATH,
              help="JSONL results file (default: probe-REGION.jsonl), written atomically.")
@click.option("--results", "results_url", metavar="s3://BUCKET/PREFIX",
              help="Also append this run as a new object under an S3 prefix.")
@click.option("--endpoint-url", help="S3-compatible endpoint for --results.")
@click.option("--samples", type=click.IntRange(min=1), help="Override probe.samples.")
@click.option("--every", type=Duration(), metavar="DURATION",
              help="Run until stopped, one round per DURATION (60s, 5m, 1h), each round "
                   "appended to --output and stored as a new object under --results.")
@click.option("--jitter", type=Duration(), metavar="DURATION",
              help="--every: wait up to this much more before each round (10s).")
@click.option("--rounds", type=click.IntRange(min=1),
              help="--every: stop after this many rounds.")
@json_option
def probe_command(region: str, config_path: Path | None, output: Path | None,
                  results_url: str | None, endpoint_url: str | None, samples: int | None,
                  every: float | None, jitter: float | None, rounds: int | None,
                  as_json: bool) -> None:
    """Probe every CDN from REGION: timed fetches and player-like video sessions, as JSONL.

    With --every, rounds run on a schedule until stopped: Ctrl-C or SIGTERM lets the running
    round finish and write, then exits 0; a failing results bus is retried and reported."""
    from packager.files import write_atomic
    from probes.results import jsonl, parse_records
    from probes.run import probe_region
    from probes.s3store import append_run, run_key
    from probes.score import scorecard
    from render.probes import probe_doc, show_probe
    config = _probe_config(config_path)
    if samples is not None:
        config = config.with_samples(samples)
    config.region(region)  # unknown region: exit 2 before any traffic
    if every is not None:
        _probe_every(config, region, every, jitter, rounds, output, results_url, endpoint_url,
                     as_json)
        return
    if jitter is not None or rounds is not None:
        raise click.UsageError("--jitter and --rounds go with --every")
    with unit_progress(as_json, f"probe {region}") as sink:
        run = probe_region(config, region, sink)
    text = jsonl(run.lines)
    target = output or Path(f"probe-{region}.jsonl")
    write_atomic(target, text)
    stored = None
    if results_url:
        key = run_key(region, run.started_at, run.run_id)
        stored = append_run(results_url, key, text.encode(), _s3(endpoint_url))
    if as_json:
        emit_json(probe_doc(run, str(target), stored))
        return
    card = scorecard(parse_records((f"run {run.run_id}", x) for x in run.lines), config)
    show_probe(run, card, str(target), stored)


def _rum(path: Path | None) -> RumCells | None:
    """(region, CDN) -> real-viewer summary of a RUM.jsonl; None without --rum."""
    if path is None:
        return None
    from rum.records import load_summaries
    return load_summaries(path)


def _probe_every(config: ProbeConfig, region: str, every: float, jitter: float | None,
                 rounds: int | None, output: Path | None, results_url: str | None,
                 endpoint_url: str | None, as_json: bool) -> None:
    from probes.schedule import Schedule, run_schedule
    from render.probes import show_round
    schedule = Schedule(every=every, jitter=jitter or 0.0, rounds=rounds)
    run_schedule(config, region, schedule, output or Path(f"probe-{region}.jsonl"),
                 results_url, _s3(endpoint_url), lambda r: show_round(r, as_json))


@cdnpack.command("exporter")
@click.option("--config", "config_path", type=PATH,
              help="Regions, CDNs and targets (default: regions.yaml).")
@click.option("--region", required=True, help="Region id this exporter probes from.")
@click.option("--listen", default="127.0.0.1:9115", show_default=True, metavar="HOST:PORT",
              help="Address to serve /probe and /metrics on (port 0: any free port).")
@json_option
def exporter_command(config_path: Path | None, region: str, listen: str,
                     as_json: bool) -> None:
    """Serve a Prometheus exporter in blackbox_exporter's style: /probe?cdn=ID&target=PATH
    runs one probe (blackbox metric names, plus startup and sustainable bitrate for hls/dash
    targets); /metrics is the exporter's own. Runs until Ctrl-C or SIGTERM (exit 130 or 143,
    once the probes running have answered)."""
    from probes.exporter import serve
    from probes.serving import parse_listen
    config = _probe_config(config_path)
    address = parse_listen(listen, "127.0.0.1:9115")
    config.region(region)  # unknown region: exit 2 before listening

    def ready(url: str) -> None:
        if as_json:
            emit_json({"listen": url, "region": region})
        else:
            from render.console import out_console
            out_console.print(f"cdnpack exporter ({region}) on {url}: /probe?cdn=ID&target="
                              "PATH, /metrics")
        sys.stdout.flush()

    stopped_by(serve(config, region, address, ready))


@cdnpack.command("score")
@click.argument("results", nargs=-1, required=True)
@click.option("--config", "config_path", type=PATH,
              help="Config for budgets and audience weights (default: regions.yaml).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@click.option("--prometheus", type=PATH,
              help="Write Prometheus text exposition here (atomically; textfile collector).")
@click.option("--html", "html_path", type=PATH,
              help="Write an HTML report (heatmap, TTFB distributions) here.")
@click.option("--rum", "rum_path", type=FILE_PATH,
              help="Real-viewer QoE (RUM.jsonl from `rum ingest`) beside the probes' columns.")
@json_option
def score_command(results: tuple[str, ...], config_path: Path | None, endpoint_url: str | None,
                  prometheus: Path | None, html_path: Path | None, rum_path: Path | None,
                  as_json: bool) -> None:
    """Score RESULTS (JSONL files or s3://BUCKET/PREFIX): percentiles, scores, rankings.

    score = 100 x availability x (0.4 T + 0.3 S + 0.3 R), each term budget/(budget+p95)
    (for throughput p50/(p50+budget)); see probes/score.py.
    """
    from packager.files import write_atomic
    from probes.report import html_report, prometheus_text
    from probes.results import read_results
    from probes.score import scorecard
    from render.probes import scorecard_doc, show_scorecard
    config = _probe_config(config_path)
    card = scorecard(read_results(results, _s3(endpoint_url)), config)
    rum = _rum(rum_path)
    if prometheus is not None:
        write_atomic(prometheus, prometheus_text(card))
    if html_path is not None:
        write_atomic(html_path, html_report(card, rum=rum))
    if as_json:
        emit_json(scorecard_doc(card, rum))
    else:
        show_scorecard(card, "cdnpack score", rum)


@cdnpack.command("gate")
@click.argument("results", nargs=-1, required=True)
@click.option("--budgets", "config_path", type=PATH,
              help="Config holding the budgets (default: regions.yaml).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@click.option("--junit", type=PATH,
              help="Write JUnit XML: one testcase per region x CDN x budget.")
@click.option("--rum", "rum_path", type=FILE_PATH,
              help="Real-viewer QoE (RUM.jsonl) for the rum_startup_p95 / rum_rebuffer_ratio "
                   "budgets.")
@json_option
def gate_command(results: tuple[str, ...], config_path: Path | None, endpoint_url: str | None,
                 junit: Path | None, rum_path: Path | None, as_json: bool) -> None:
    """Exit 0 when every budget holds for RESULTS, 1 when any is missed, 2 on bad input."""
    from packager.files import write_atomic
    from probes.gate import enforce, evaluate, junit_xml, write_step_summary
    from probes.results import read_results
    from probes.score import scorecard
    from render.probes import show_verdict, verdict_doc
    config = _probe_config(config_path)
    card = scorecard(read_results(results, _s3(endpoint_url)), config)
    verdict = evaluate(card, config, _rum(rum_path))
    if junit is not None:
        write_atomic(junit, junit_xml(verdict))
    write_step_summary(verdict, card)
    if as_json:
        emit_json(verdict_doc(verdict))
    else:
        show_verdict(verdict)
    enforce(verdict)


# --- steer: players follow the CDN ranking the probes measure ---------------------------------


@cdnpack.group("steer")
def steer_group() -> None:
    """Content steering: per-region pathway order from probe results, served or published."""


@steer_group.command("plan")
@click.argument("results", nargs=-1, required=True)
@click.option("--config", "config_path", type=PATH,
              help="Regions, CDNs, budgets and steering settings (default: regions.yaml).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@json_option
def steer_plan(results: tuple[str, ...], config_path: Path | None, endpoint_url: str | None,
               as_json: bool) -> None:
    """Per region, the pathway order RESULTS (JSONL files, directories or s3://BUCKET/PREFIX)
    give, and why: score, missed budgets, hysteresis, stale data."""
    from datetime import UTC, datetime

    from probes.results import read_results
    from render.steering import plan_doc, show_plan
    from steering.plan import make_plan
    config = _probe_config(config_path)
    plan = make_plan(read_results(results, _s3(endpoint_url)), config, datetime.now(UTC))
    if as_json:
        emit_json(plan_doc(plan, config))
    else:
        show_plan(plan, config)


@steer_group.command("serve")
@click.option("--config", "config_path", type=PATH,
              help="Regions, CDNs, budgets and the steering section (default: regions.yaml); "
                   "re-read on every refresh.")
@click.option("--results", "results", multiple=True, required=True,
              metavar="DIR|s3://BUCKET/PREFIX", help="Probe results to plan from (repeatable).")
@click.option("--listen", default="127.0.0.1:8900", show_default=True, metavar="HOST:PORT",
              help="Address to answer on (port 0: any free port, printed when ready).")
@click.option("--refresh", type=Duration(), default="30s", show_default=True,
              metavar="DURATION", help="How often config and results are re-read (250ms, 30s, "
                                       "5m).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@json_option
def steer_serve(config_path: Path | None, results: tuple[str, ...], listen: str, refresh: float,
                endpoint_url: str | None, as_json: bool) -> None:
    """Serve /hls.json and /dash.json per viewer region, /metrics and /healthz until Ctrl-C or
    SIGTERM (exit 130 or 143, after open requests are answered)."""
    from render.steering import show_listening, show_stopped
    from steering.server import run as run_server
    from steering.server import serve_request
    request = serve_request(config_path or _default_config(), results, listen, refresh,
                            endpoint_url)
    result = run_server(request, lambda url: show_listening(url, as_json))
    show_stopped(result, as_json)
    if result.signal is not None:
        stopped_by(result.signal)


@steer_group.command("publish")
@click.argument("destination", metavar="s3://BUCKET/PREFIX")
@click.option("--config", "config_path", type=PATH,
              help="Regions, CDNs, budgets and the steering section (default: regions.yaml).")
@click.option("--results", "results", multiple=True, required=True,
              metavar="FILE|DIR|s3://BUCKET/PREFIX", help="Probe results to plan from "
              "(repeatable).")
@click.option("--function-file", type=FILE_PATH,
              help="Also write the CloudFront Function's code here.")
@click.option("--endpoint-url", help="S3-compatible endpoint (results and destination).")
@json_option
def steer_publish(destination: str, config_path: Path | None, results: tuple[str, ...],
                  function_file: Path | None, endpoint_url: str | None, as_json: bool) -> None:
    """Static steering documents per region in DESTINATION, plus a CloudFront Function
    (cloudfront-js-2.0) that answers each viewer's by CloudFront-Viewer-Country."""
    from datetime import UTC, datetime

    from cdn.s3 import parse_s3_url
    from probes.results import read_results
    from render.steering import publish_doc, show_publish
    from steering.plan import make_plan
    from steering.publish import PublishRequest, publish
    location = parse_s3_url(destination)
    config = _probe_config(config_path)
    connection = _s3(endpoint_url)
    plan = make_plan(read_results(results, connection), config, datetime.now(UTC))
    result = publish(PublishRequest(location, config, plan, connection, function_file))
    if as_json:
        emit_json(publish_doc(result, config))
    else:
        show_publish(result, config)


def _default_config() -> Path:
    from probes.config import default_config_path
    return default_config_path()


# --- quality: VMAF of a packaged release, and a gate on it ------------------------------------


@cdnpack.command("quality")
@click.argument("release_dir", type=PATH)
@click.option("--source", type=PATH, required=True,
              help="The source the release was packaged from.")
@click.option("--min-vmaf", type=float, metavar="N",
              help="Fail (exit 1) when a rendition's VMAF is under N.")
@click.option("--keystore", type=DIR_PATH,
              help="Keystore holding an encrypted release's keys (default: "
                   "$XDG_DATA_HOME/cdnpack/keys); keys stay in memory, never printed.")
@json_option
def quality_command(release_dir: Path, source: Path, min_vmaf: float | None,
                    keystore: Path | None, as_json: bool) -> None:
    """Measure every video rendition of RELEASE_DIR against its SOURCE: VMAF (libvmaf,
    vmaf_v0.6.1, on the delivered tracks), bitrate and bits per VMAF point. Exit 1 when a
    rendition is under --min-vmaf or under the VMAF target it was built for; 2 when SOURCE
    is not the release's (duration, frame count)."""
    from packager.errors import BudgetError
    from packager.quality.check import check_quality
    from render.console import status
    from render.quality import quality_doc, show_quality
    with status(quiet=as_json, message="measuring VMAF"):
        report = check_quality(release_dir, source, min_vmaf, keystore)
    if as_json:
        emit_json(quality_doc(report))
    else:
        show_quality(report)
    if report.failures:
        raise BudgetError("; ".join(report.failures))


# --- preview: a release you can watch before you push it -------------------------------------


@cdnpack.command("preview")
@click.argument("release_dir", type=PATH)
@click.option("--listen", default="127.0.0.1:8800", show_default=True, metavar="HOST:PORT",
              help="Address to answer on (port 0: any free port, printed when ready); loopback "
                   "only for an encrypted release (its page gets the keys).")
@click.option("--keystore", type=DIR_PATH,
              help="Keystore holding the release's keys (default: $XDG_DATA_HOME/cdnpack/keys); "
                   "only read.")
@click.option("--key", envvar="CDNPACK_KEY", show_envvar=True, metavar="KID:KEY",
              help="A key of the release given directly (e.g. packaged with --keys raw).")
@click.option("--config", "config_path", type=PATH,
              help="A steered release: the regions and CDNs whose pathway order per region the "
                   "page shows and its player follows (default with --results: regions.yaml).")
@click.option("--results", multiple=True, metavar="DIR|FILE|s3://BUCKET/PREFIX",
              help="Probe results the per-region order is planned from, as `steer plan` does "
                   "(repeatable; without them every region gets the config's order).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// results.")
@click.option("--play-from", type=click.Choice(["local", "published"]), default="local",
              show_default=True,
              help="local: the release's own files (a steered release's pathways mapped onto "
                   "them); published: the CDNs and steering server its manifests name.")
@json_option
def preview_command(release_dir: Path, listen: str, keystore: Path | None, key: str | None,
                    config_path: Path | None, results: tuple[str, ...],
                    endpoint_url: str | None, play_from: str, as_json: bool) -> None:
    """Serve RELEASE_DIR and a page that plays it (shaka-player, HLS and DASH) until Ctrl-C:
    renditions and bitrates, languages and roles, thumbnails, trick play, the pathway each
    region gets; encrypted releases with their keys (ClearKey, AES-128) from the keystore."""
    from preview.server import preview_request
    from preview.server import run as run_preview
    from render.preview import show_listening, show_stopped
    plan = None
    if config_path is not None or results:
        def plan() -> tuple[Any, ...]:
            return _preview_regions(config_path, results, endpoint_url)
    request = preview_request(release_dir, listen, keystore, key, play_from, plan,
                              key_from_env=_from_env("key"))
    result = run_preview(request, lambda url: show_listening(url, request, as_json))
    show_stopped(result, as_json)
    if result.signal is not None:
        stopped_by(result.signal)


def _preview_regions(config_path: Path | None, results: tuple[str, ...],
                     endpoint_url: str | None) -> tuple[Any, ...]:
    """Each region's pathway order, planned as `steer plan` plans it (the config's order
    without results)."""
    from datetime import UTC, datetime

    from preview.regions import from_plan
    from probes.results import read_results
    from steering.plan import make_plan
    config = _probe_config(config_path)
    found = read_results(results, _s3(endpoint_url)) if results else None
    return from_plan(make_plan(found, config, datetime.now(UTC)), config)


# --- catalog: many titles, released on a Dask cluster ------------------------------------------

CLUSTER_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", show_envvar=True,
                 metavar="tcp://HOST:8786",
                 help="A Dask scheduler to run the encode jobs on (tls://HOST:PORT with the "
                      "--tls-* files); default: a LocalCluster on this machine."),
    click.option("--workers", type=int, metavar="N",
                 help="LocalCluster: worker processes (default: one per core); with "
                      "--scheduler: wait until N workers have joined."),
    click.option("--tls-ca", type=PATH, metavar="FILE",
                 help="TLS to the scheduler: the CA certificate (PEM)."),
    click.option("--tls-cert", type=PATH, metavar="FILE",
                 help="TLS to the scheduler: this client's certificate (PEM)."),
    click.option("--tls-key", type=PATH, metavar="FILE",
                 help="TLS to the scheduler: this client's private key (PEM)."),
    click.option("--connect-timeout", type=SECONDS, default="10s", show_default=True,
                 metavar="DURATION",
                 help="How long to try to reach the scheduler (then exit 3)."),
    click.option("--worker-wait", type=SECONDS, default="5m", show_default=True,
                 metavar="DURATION",
                 help="How long jobs wait on a cluster left without any worker (then exit 3)."),
]
_CLUSTER_NAMES = _names(CLUSTER_OPTIONS)


@cdnpack.group("catalog")
def catalog_group() -> None:
    """Release a catalog of titles (package, push, verify each) with the encodes on Dask."""


@catalog_group.command("run")
@click.argument("catalog_file", metavar="CATALOG.yaml", type=PATH)
@_options(CLUSTER_OPTIONS)
@click.option("--max-parallel", type=click.IntRange(min=1), default=2, show_default=True,
              metavar="N", help="Titles released at once on this machine (their encode jobs "
                                "share the cluster).")
@click.option("--work-dir", type=DIR_PATH,
              help="Where titles are built before their push (default: the temp dir).")
@click.option("--keystore", type=DIR_PATH,
              help="Keystore of the encrypted titles' keys (content id: the title's id).")
@click.option("--stage", "stage_url", metavar="s3://BUCKET/PREFIX",
              help="With --scheduler: where the workers' encode outputs and this machine's "
                   "inputs meet, a prefix per title (default: each title's DESTINATION/"
                   "_cdnpack/stage). Clear media: keep it private.")
@click.option("--force", is_flag=True,
              help="Release every title again, up to date or not (default: resume).")
@_options(PUSH_OPTIONS)
@json_option
def catalog_run(catalog_file: Path, max_parallel: int, work_dir: Path | None,
                keystore: Path | None, stage_url: str | None, force: bool, as_json: bool,
                **options: Any) -> None:
    """Release every title of CATALOG.yaml that is not up to date: a title whose published
    release.json records its current inputs (source size and ETag or sha256, options, cdnpack
    version) is skipped. Exit 1 when any title failed (each named), 0 otherwise."""
    from cdn.s3 import parse_s3_url
    from release.catalog import CatalogFailed, CatalogRequest, run_catalog
    from release.catalog_file import load_catalog
    from render.catalog import catalog_doc, catalog_progress, show_catalog
    cluster = _cluster_spec(_split(options, _CLUSTER_NAMES))
    catalog = load_catalog(catalog_file)
    shaping = {k: options.pop(k) for k in ("manifest_max_age", "distribution", "wait")}
    request = CatalogRequest(
        catalog=catalog, cluster=cluster, connection=_connection(**options),
        max_parallel=max_parallel, work_dir=work_dir, keystore=keystore, force=force,
        stage=parse_s3_url(stage_url) if stage_url else None,
        verbose=logging.getLogger().isEnabledFor(logging.INFO), **shaping)
    with catalog_progress(as_json) as watcher:
        result = run_catalog(request, watcher)
    if as_json:
        emit_json(catalog_doc(result))
    else:
        show_catalog(result)
    if result.failed:
        raise CatalogFailed(result.failed)


def _cluster_spec(options: dict[str, Any]) -> Any:
    from cluster.connect import cluster_spec
    return cluster_spec(options["scheduler"], options["workers"], options["tls_ca"],
                        options["tls_cert"], options["tls_key"], options["connect_timeout"],
                        options["worker_wait"])


@catalog_group.command("status")
@click.argument("catalog_file", metavar="CATALOG.yaml", type=PATH)
@click.option("--endpoint-url", help="Any S3-compatible origin (MinIO, R2, a local moto).")
@click.option("--profile", help="AWS profile.")
@click.option("--region", help="AWS region.")
@json_option
def catalog_status(catalog_file: Path, endpoint_url: str | None, profile: str | None,
                   region: str | None, as_json: bool) -> None:
    """Per title of CATALOG.yaml: up to date, to do, or failed (with the reason of its last
    attempt), and where it is published."""
    from cdn.s3 import client
    from release.catalog_file import load_catalog
    from release.catalog_state import plan_catalog
    from render.catalog import show_status, status_doc
    catalog = load_catalog(catalog_file)
    states = plan_catalog(catalog, client(_connection(endpoint_url, profile, region)))
    if as_json:
        emit_json(status_doc(str(catalog_file), states))
    else:
        show_status(str(catalog_file), states)


# --- rights: territories and windows, enforced at the edge -------------------------------------


@cdnpack.group("rights")
def rights_group() -> None:
    """Territories and windows: where and when a release may play, checked, drawn and enforced
    at the CloudFront edge."""


def _instant(at: str | None) -> datetime:
    from datetime import UTC, datetime

    from packager.rights.instants import InstantError, parse_instant
    if at is None:
        return datetime.now(UTC)
    try:
        return parse_instant(at)
    except InstantError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


@rights_group.command("check")
@click.argument("source", type=PATH, metavar="RELEASE_DIR|TITLE.yaml")
@click.option("--at", "at", metavar="TIME", help="RFC 3339 instant to check (default: now).")
@click.option("--require", "required", multiple=True, metavar="TERRITORY|REGION",
              help="A country code or region id that must be licensed then (repeatable): "
                   "exit 1 when one is not.")
@click.option("--config", "config_path", type=PATH,
              help="The regions --require and a title file's grants may name (default: "
                   "regions.yaml).")
@json_option
def rights_check(source: Path, at: str | None, required: tuple[str, ...],
                 config_path: Path | None, as_json: bool) -> None:
    """Per territory, the grant in force at TIME and what it allows, when it opens or
    closes, or "not licensed"; exit 1 when a --require'd territory is not licensed then."""
    from packager.errors import UnlicensedError
    from packager.rights.instants import format_instant
    from packager.rights.source import read_rights
    from packager.rights.standing import required_countries, standings
    from render.rights import check_doc, show_check
    moment = _instant(at)
    rights = read_rights(source, lambda: _regions(config_path))
    must = required_countries(required, _regions(config_path)) if required else ()
    table = standings(rights, moment, must)
    if as_json:
        emit_json(check_doc(table, moment))
    else:
        show_check(table, moment)
    missing = [s.territory for s in table if s.required and not s.licensed]
    if missing:
        raise UnlicensedError(f"not licensed at {format_instant(moment)}: {', '.join(missing)}")


@rights_group.command("report")
@click.argument("sources", nargs=-1, required=True, type=PATH,
                metavar="RELEASE_DIR|TITLE.yaml...")
@click.option("--html", "html_path", type=FILE_PATH,
              required=True, help="The HTML report to write.")
@click.option("--at", "at", metavar="TIME", help="The instant marked as today (default: now).")
@click.option("--config", "config_path", type=PATH,
              help="The regions a title file's grants may name (default: regions.yaml).")
@json_option
def rights_report(sources: tuple[Path, ...], html_path: Path, at: str | None,
                  config_path: Path | None, as_json: bool) -> None:
    """The rights matrix as a picture: territories as rows, time as the axis, each title's
    windows as bars (max height and languages), today marked."""
    from packager.files import write_atomic
    from packager.rights.source import read_rights, title_name
    from render.rights_report import report_html, report_summary
    moment = _instant(at)
    titles = [(title_name(s), read_rights(s, lambda: _regions(config_path))) for s in sources]
    write_atomic(html_path, report_html(titles, moment))
    summary = report_summary(titles, moment, html_path)
    if as_json:
        emit_json(summary)
    else:
        from render.console import out_console
        out_console.print(f"wrote {html_path}: {len(titles)} titles, "
                          f"{len(summary['territories'])} territories")


@rights_group.command("publish")
@click.argument("release_dir", type=PATH)
@click.argument("destination", metavar="s3://BUCKET/PREFIX")
@click.option("--distribution", required=True, help="CloudFront distribution id.")
@click.option("--function-file", type=FILE_PATH,
              help="Also write the CloudFront Function's code here.")
@click.option("--kvs-file", type=FILE_PATH,
              help="Also write its KeyValueStore data here (the import format).")
@click.option("--dry-run", is_flag=True, help="Write the files; call nothing.")
@click.option("--url-path", metavar="/PATH/",
              help="The path viewers request the release under (default: /PREFIX/).")
@click.option("--name", metavar="NAME",
              help="Of the function and its store (default: cdnpack-rights-<distribution>).")
@click.option("--endpoint-url", help="S3 and CloudFront endpoint (a local stand-in).")
@click.option("--profile", help="AWS profile.")
@json_option
def rights_publish(release_dir: Path, destination: str, distribution: str,
                   function_file: Path | None, kvs_file: Path | None, dry_run: bool,
                   url_path: str | None, name: str | None, endpoint_url: str | None,
                   profile: str | None, as_json: bool) -> None:
    """The rights function (cloudfront-js-2.0, viewer request) and its KeyValueStore data for
    RELEASE_DIR, pushed to DESTINATION and served by DISTRIBUTION: viewers get their grant's
    manifests, 451 where and when it is not licensed, 403 beyond their grant."""
    from cdn.s3 import Connection, parse_s3_url
    from render.rights import publish_doc, show_publish
    from steering.rights_publish import RightsPublishRequest, publish_rights
    request = RightsPublishRequest(
        release_dir=release_dir, destination=parse_s3_url(destination),
        distribution=distribution, url_path=url_path,
        connection=Connection(endpoint_url=endpoint_url, profile=profile, region="us-east-1"),
        function_file=function_file, kvs_file=kvs_file, dry_run=dry_run, name=name)
    result = publish_rights(request)
    if as_json:
        emit_json(publish_doc(result))
    else:
        show_publish(result)


# --- keys: the local keystore and CPIX exchange -----------------------------------------------


def _keystore_option(f: F) -> F:
    return click.option(
        "--keystore", type=DIR_PATH, default=None,
        help="Keystore directory (default: $XDG_DATA_HOME/cdnpack/keys).",
    )(f)


def _open_keystore(path: Path | None) -> Keystore:
    from packager.keys.keystore import Keystore
    return Keystore(path)


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
    from render.keys import show_new_keys
    store = _open_keystore(keystore)
    keyset = store.new_keyset(content_id, per_class)
    rows = [{"track_class": c.value, "kid": k.kid_uuid} for c, k in keyset.keys.items()]
    if as_json:
        emit_json({"content_id": content_id, "keystore": str(store.root), "keys": rows})
    else:
        show_new_keys(content_id, rows)


@keys_group.command("list")
@_keystore_option
@json_option
def keys_list(keystore: Path | None, as_json: bool) -> None:
    """Every key in the keystore (KIDs and what they are for; never the keys)."""
    from render.keys import show_keystore, stored_doc
    docs = [stored_doc(s) for s in _open_keystore(keystore)]
    if as_json:
        emit_json(docs)
    else:
        show_keystore(docs)


@keys_group.command("show")
@click.argument("kid")
@click.option("--reveal", is_flag=True, help="Print the key itself (it is secret).")
@_keystore_option
@json_option
def keys_show(kid: str, reveal: bool, keystore: Path | None, as_json: bool) -> None:
    """One key's KID, content id and classes; the key value only with --reveal."""
    from packager.keys.model import parse_kid
    from render.keys import show_key, stored_doc
    doc = stored_doc(_open_keystore(keystore).get(parse_kid(kid)), reveal)
    if as_json:
        emit_json(doc)
    else:
        show_key(doc)


@keys_group.command("export")
@click.argument("content_id")
@click.option("--cpix", "cpix_path", type=FILE_PATH,
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
        emit_json({"path": str(cpix_path), "content_id": content_id, "kids": kids})
    else:
        from render.console import out_console
        out_console.print(f"wrote {cpix_path}: {len(kids)} key(s) of {content_id}")


@keys_group.command("import")
@click.argument("cpix_file", type=FILE_PATH)
@_keystore_option
@json_option
def keys_import(cpix_file: Path, keystore: Path | None, as_json: bool) -> None:
    """Store the keys of a CPIX document; a KID already stored with another key is refused
    before anything is written."""
    from packager.keys.cpix import read_cpix
    doc = read_cpix(cpix_file)
    store = _open_keystore(keystore)
    added = {k.kid for k in store.import_keys(doc.keys, doc.content_id, doc.classes, cpix_file)}
    imported = [k.kid_uuid for k in doc.keys if k.kid in added]
    present = [k.kid_uuid for k in doc.keys if k.kid not in added]
    if as_json:
        emit_json({"content_id": doc.content_id, "imported": imported,
                   "already_present": present, "keyset": doc.keyset is not None})
    else:
        from render.console import out_console
        out_console.print(f"imported {len(imported)} key(s) from {cpix_file}"
                          + (f", {len(present)} already present" if present else ""))


# --- rum: real-viewer QoE from CDN logs (CMCD) ------------------------------------------------


@cdnpack.group("rum")
def rum_group() -> None:
    """Real-viewer QoE from CDN access logs (CMCD): sessions, startup, rebuffering, bitrate."""


@rum_group.command("ingest")
@click.argument("logs", nargs=-1, required=True)
@click.option("--format", "log_format", required=True,
              type=click.Choice(["cloudfront-standard", "cloudfront-realtime"]),
              help="CloudFront standard logs (W3C, 33 fields) or real-time logs (cmcd-*).")
@click.option("--config", "config_path", type=PATH,
              help="Regions (countries) and CDNs (hosts) to map lines to (default: "
                   "regions.yaml).")
@click.option("-o", "--output", type=FILE_PATH, required=True,
              help="RUM.jsonl to write (new cells are added; files already in it are skipped).")
@click.option("--cdn", metavar="ID", help="Count every line for this CDN (else from the host).")
@click.option("--fields", metavar="F1,F2,...",
              help="cloudfront-realtime: the configuration's fields, in order (default: all "
                   "documented fields).")
@click.option("--engine", type=click.Choice(["duckdb", "athena"]), default="duckdb",
              show_default=True, help="duckdb: here, embedded; athena: on Amazon Athena over "
                                      "the log bucket (LOGS is its s3:// prefix).")
@click.option("--database", help="--engine athena: the Glue database holding the log table.")
@click.option("--workgroup", help="--engine athena: the Athena workgroup.")
@click.option("--table", help="--engine athena: the log table (default: cloudfront_standard_logs "
                              "or cloudfront_realtime_logs, as deploy/athena creates them).")
@click.option("--query-results", metavar="s3://BUCKET/PREFIX",
              help="--engine athena: where Athena writes results (default: the workgroup's).")
@click.option("--endpoint-url", help="S3-compatible endpoint for s3:// logs (and Athena's).")
@click.option("--aws-region", help="AWS region for --engine athena.")
@json_option
def rum_ingest(logs: tuple[str, ...], log_format: str, config_path: Path | None, output: Path,
               cdn: str | None, fields: str | None, engine: str, database: str | None,
               workgroup: str | None, table: str | None, query_results: str | None,
               endpoint_url: str | None, aws_region: str | None, as_json: bool) -> None:
    """Aggregate CDN LOGS (files, directories, s3://BUCKET/PREFIX; gzip or plain) into
    per (region, CDN, hour) real-viewer QoE in RUM.jsonl. No viewer address or session id is
    written anywhere: sessions are counted."""
    from render.console import status
    from render.rum import ingest_doc, show_ingest
    from rum.ingest import IngestRequest, ingest
    config = _probe_config(config_path)
    request = IngestRequest(
        logs=logs, log_format=log_format, config=config, output=output, cdn=cdn,
        fields=tuple(f.strip() for f in fields.split(",") if f.strip()) if fields else None,
        endpoint_url=endpoint_url)
    with status(quiet=as_json, message=f"rum ingest ({engine})"):
        if engine == "athena":
            from rum.athena import AthenaTarget, ingest_athena
            target = AthenaTarget(database=database, workgroup=workgroup, table=table,
                                  query_results=query_results, region=aws_region)
            result = ingest_athena(request, target)
        else:
            result = ingest(request)
    if as_json:
        emit_json(ingest_doc(result))
    else:
        show_ingest(result)



def command_paths(group: click.Group | None = None,
                  prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The words of every command, `cdnpack` itself first (() is the group): what `--help`
    can be asked of (bench/startup.py times them, tests/test_startup.py checks their imports)."""
    group = cdnpack if group is None else group
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        paths += (command_paths(command, (*prefix, name)) if isinstance(command, click.Group)
                  else [(*prefix, name)])
    return paths


if __name__ == "__main__":
    main()
