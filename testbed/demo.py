"""`cdnpack demo`: the whole release flow on one machine, no network, no cloud account.

An embedded source (lavfi test picture and tone) is packaged as a localized title (English
original, Latin American Spanish and Japanese dubs; Arabic, Thai, Spanish and Japanese
subtitles; English forced narratives and captions: demo/title/title.yaml) with cbcs and
generated keys, I-frame playlists and thumbnail sheets, a local S3 origin (moto_server) and a
CloudFront distribution on it stand in for AWS, and twelve emulated edges (two CDNs x the six
default regions, each with its own latency and bandwidth, pulling from the origin like a CDN)
stand in for the CDNs.  Then `rollout` stages, probes, gates and publishes exactly as
`cdnpack release` does against real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cdn.publish import PushRequest
from cdn.s3 import S3Location, client
from packager.encoding.thumbnails import ThumbnailSpec
from packager.keys.source import keyed_request
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.title.file import load_title
from packager.title.model import Title
from probes.config import load_config
from release.flow import RolloutRequest, RolloutResult, rollout
from testbed.clips import ClipSpec, make_clip, make_dub
from testbed.edges import Edges, EdgeSpec, edge_process
from testbed.origin import (
    create_distribution,
    local_connection,
    moto_command,
    moto_server,
    origin_bucket,
)
from testbed.subtitles import write_subtitles

BUCKET = "cdnpack-demo"
PREFIX = "releases/demo"
CONTENT_ID = "cdnpack-demo"

#: (first-byte delay s, bandwidth Mbit/s) per region and CDN: two CDNs whose strengths differ
#: by market, as real ones do; all inside the default budgets, so the gate passes.
EDGE_PROFILE: dict[str, dict[str, tuple[float, float]]] = {
    "cloudfront": {"na": (0.012, 400), "eu": (0.022, 300), "jpkr": (0.040, 200),
                   "sea": (0.085, 90), "latam": (0.090, 80), "me": (0.150, 50)},
    "fastly": {"na": (0.018, 300), "eu": (0.014, 400), "jpkr": (0.060, 150),
               "sea": (0.065, 120), "latam": (0.140, 60), "me": (0.110, 70)},
}

#: Quick but real: every region x CDN x target sampled three times on cold connections.
PROBE_SETTINGS = {"samples": 3, "connections": "cold", "concurrency": 8, "timeout": "5s",
                  "deadline": "60s", "renditions": "lowest", "segments": 2,
                  "tls_verify": True, "lag_threshold": "5ms"}

#: Thumbnails for scrubbing: every 2 s, so that even `--duration 4` has a sheet with two.
THUMBNAILS = ThumbnailSpec(interval=2.0)

ProgressSink = Callable[[str, float, float], None]


@dataclass(frozen=True)
class DemoResult:
    package: PackageResult
    rollout: RolloutResult
    config: Path
    keystore: Path
    distribution: str
    origin: str


def demo_config(edges: Edges, shipped: Path, target: Path) -> Path:
    """The shipped regions and budgets, with the emulated CDNs and the release's manifests."""
    doc: dict[str, Any] = yaml.safe_load(shipped.read_text())
    cdns = []
    for cdn, regions in EDGE_PROFILE.items():
        first = next(iter(regions))
        cdns.append({
            "id": cdn,
            "base_url": edges.url(f"{cdn}-{first}"),
            "regions": {region: {"host": edges.host(f"{cdn}-{region}")} for region in regions},
        })
    doc["cdns"] = cdns
    doc["targets"] = [{"path": "master.m3u8"}, {"path": "manifest.mpd"}]
    doc["probe"] = PROBE_SETTINGS
    target.write_text("# Written by `cdnpack demo`: the shipped regions and budgets, with the "
                      "demo's emulated CDN edges.\n" + yaml.safe_dump(doc, sort_keys=False))
    return target


def edge_specs(origin: str) -> list[EdgeSpec]:
    return [
        EdgeSpec(f"{cdn}-{region}", delay=delay, bandwidth=mbps * 1e6, cache=cdn, origin=origin)
        for cdn, regions in EDGE_PROFILE.items() for region, (delay, mbps) in regions.items()
    ]


@contextmanager
def local_cdn(workdir: Path) -> Iterator[tuple[str, Edges, str]]:
    """moto_server with the demo bucket and a distribution, and the edges pulling from it:
    yields (origin URL, edges, distribution id); everything stops on the way out."""
    with ExitStack() as stack:
        url = stack.enter_context(moto_server())
        connection = local_connection(url)
        origin_bucket(client(connection), BUCKET)
        distribution = create_distribution(client(connection, "cloudfront"), BUCKET)
        edges = stack.enter_context(edge_process(edge_specs(f"{url}/{BUCKET}/{PREFIX}/"),
                                                 workdir))
        yield url, edges, distribution


#: The demo title's dubs (language, tone Hz) and text files (option field, language, format).
DUBS = (("es-419", 660), ("ja", 880))
TEXTS = (("subtitles", "ar", "srt"), ("subtitles", "th", "vtt"),
         ("subtitles", "es-419", "ttml"), ("subtitles", "ja", "ass"),
         ("forced_subtitles", "en", "vtt"), ("captions", "en", "srt"))


def demo_title(directory: Path, duration: float) -> Title:
    """The demo's side files and the title file that lists them, read back as `--title`
    reads it: a title a user can copy."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# Written by `cdnpack demo`: the languages of the demo release.",
             "language: en", "default_language: en", "audio:"]
    for language, tone in DUBS:
        make_dub(directory / f"dub-{language}.mp4", duration, tone)
        lines.append(f"  {language}: dub-{language}.mp4")
    field = ""
    for option, language, fmt in TEXTS:
        if option != field:
            lines.append(f"{option}:")
            field = option
        name = f"{option}-{language}.{fmt}"
        write_subtitles(directory / name, language, fmt)
        lines.append(f"  {language}: {name}")
    (directory / "title.yaml").write_text("\n".join(lines) + "\n")
    return load_title(directory / "title.yaml")


def run_demo(workdir: Path, duration: float, shipped_config: Path,
             progress: ProgressSink | None = None) -> DemoResult:
    moto_command()  # the local origin is an extra: say so before any work is done
    workdir.mkdir(parents=True, exist_ok=True)
    source = make_clip(workdir / "source.mp4",
                       ClipSpec(duration=duration, width=1280, height=720, language="eng"))
    title = demo_title(workdir / "title", duration)
    output = workdir / "release"
    keystore = workdir / "keys"  # beside the release tree, never inside it
    encryption = keyed_request("cbcs", "generate", output, keystore=keystore,
                               content_id=CONTENT_ID, drm="widevine,playready,fairplay,clearkey")
    packaged = package(PackageRequest(source=source, output=output, force=True,
                                      encryption=encryption, title=title,
                                      thumbnails=THUMBNAILS), progress)
    with local_cdn(workdir) as (url, edges, distribution):
        config_path = demo_config(edges, shipped_config, workdir / "regions.yaml")
        request = RolloutRequest(
            push=PushRequest(
                release_dir=output, destination=S3Location(BUCKET, PREFIX),
                connection=local_connection(url),
                distribution=distribution, wait=True,
            ),
            config=load_config(config_path),
            regions=(),
            results_dir=workdir / "probes",
        )
        result = rollout(request, progress)
    return DemoResult(packaged, result, config_path, keystore, distribution, url)
