"""Benchmark: localized releases. (1) `package --copy` of a 60 s 1080p title with 4 audio
languages (2 streams of the source, 2 dub files) and 6 WebVTT text languages, HLS + DASH,
against Shaka Packager doing the same job side by side; (2) the transcode's cost of the 3
extra audio languages: the same source packaged with its languages against its first audio
stream alone (the full default ladder, one ffmpeg process either way).

Inputs are generated once under bench/out/localize (never committed). Runs alternate between
the compared jobs so that load drift hits both alike; medians and bests are printed.
Usage: .venv/bin/python -m bench.localize [--runs 3] [--transcode-runs 2] [--skip-transcode]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.encrypt import Run, timed
from packager.tools import find_tool
from testbed.subtitles import LINES

ROOT = Path(__file__).resolve().parent.parent
SEGMENT_SECONDS = 4
DURATION = 60
#: The source's two audio streams and the two dubs: (language, tone Hz).
SOURCE_AUDIO = (("eng", 440), ("spa", 660))
DUBS = (("fr", 880), ("ja", 550))
TEXT = ("ar", "th", "he", "ja", "ko", "es-419")


def make_inputs(workdir: Path) -> tuple[Path, Path, list[Path], list[Path]]:
    """The 60 s 1080p source (H.264 with a key frame every 2 s, two tagged AAC streams), the
    same with its first audio stream only, two dub files, six WebVTT files (a cue every 3 s)."""
    ffmpeg = str(find_tool("ffmpeg").path)
    source = workdir / "source_1080p_60s.mp4"
    if not source.exists():
        args = [ffmpeg, "-v", "error", "-y", "-f", "lavfi",
                "-i", "testsrc2=size=1920x1080:rate=25"]
        for _, tone in SOURCE_AUDIO:
            args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:beep_factor=4:sample_rate=48000"]
        args += ["-map", "0", "-map", "1", "-map", "2", "-t", str(DURATION),
                 "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "5M", "-maxrate", "5M",
                 "-bufsize", "10M", "-g", "50", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
        for i, (language, _) in enumerate(SOURCE_AUDIO):
            args += [f"-metadata:s:a:{i}", f"language={language}"]
        subprocess.run([*args, str(source)], check=True)
    single = workdir / "source_1080p_60s_one_language.mp4"
    if not single.exists():
        subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(source), "-map", "0:v",
                        "-map", "0:a:0", "-c", "copy", str(single)], check=True)
    dubs = []
    for language, tone in DUBS:
        dub = workdir / f"dub_{language}.mp4"
        if not dub.exists():
            subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i",
                            f"sine=frequency={tone}:beep_factor=4:sample_rate=48000",
                            "-t", str(DURATION), "-c:a", "aac", "-b:a", "128k", "-ac", "2",
                            str(dub)], check=True)
        dubs.append(dub)
    texts = []
    for language in TEXT:
        path = workdir / f"text_{language}.vtt"
        lines = LINES[language]
        cues = [f"00:{t // 60:02d}:{t % 60:02d}.500 --> 00:{(t + 2) // 60:02d}:{(t + 2) % 60:02d}"
                f".000\n{lines[i % len(lines)]}" for i, t in enumerate(range(0, DURATION - 2, 3))]
        path.write_text("WEBVTT\n\n" + "\n\n".join(cues) + "\n", encoding="utf-8")
        texts.append(path)
    return source, single, dubs, texts


def ours(args: list[str | Path], out: Path) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    return timed([sys.executable, "-m", "cli", "package", *args, "-o", out, "--json"])


def ours_copy(source: Path, dubs: list[Path], texts: list[Path], out: Path) -> Run:
    side: list[str | Path] = []
    for (language, _), dub in zip(DUBS, dubs, strict=True):
        side += ["--audio", f"{language}={dub}"]
    for language, text in zip(TEXT, texts, strict=True):
        side += ["--subtitles", f"{language}={text}"]
    return ours([source, "--copy", "--segment-duration", str(SEGMENT_SECONDS), *side], out)


def shaka_copy(source: Path, dubs: list[Path], texts: list[Path], out: Path) -> Run:
    """The same job for Shaka Packager: video, 4 audio languages, 6 text languages, each text
    as WebVTT segments (HLS) and CMAF wvtt (DASH), as cdnpack writes both."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def media(name: str, spec: str, ext: str = "m4s") -> str:
        init = f",init_segment={out}/{name}/init.mp4" if ext == "m4s" else ""
        return (f"{spec}{init},segment_template={out}/{name}/$Number%05d$.{ext},"
                f"playlist_name={name}/playlist.m3u8")

    args: list[str | Path] = [find_tool("packager").path,
                              media("video", f"in={source},stream=video")]
    for i, (language, _) in enumerate(SOURCE_AUDIO, 1):
        args.append(media(f"audio_{language}", f"in={source},stream={i},language={language},"
                                                "hls_group_id=audio"))
    for (language, _), dub in zip(DUBS, dubs, strict=True):
        args.append(media(f"audio_{language}", f"in={dub},stream=audio,language={language},"
                                                "hls_group_id=audio"))
    for language, text in zip(TEXT, texts, strict=True):
        spec = f"in={text},stream=text,language={language},hls_group_id=subs"
        args.append(media(f"text_{language}", spec + ",hls_only=1", "vtt"))
        args.append(media(f"text_{language}_dash", spec + ",dash_only=1"))
    args += ["--segment_duration", str(SEGMENT_SECONDS), "--generate_static_live_mpd",
             "--mpd_output", f"{out}/manifest.mpd",
             "--hls_master_playlist_output", f"{out}/master.m3u8", "--vmodule=*=0", "--quiet"]
    return timed(args)


def ours_transcode(source: Path, dubs: list[Path], out: Path) -> Run:
    side: list[str | Path] = []
    for (language, _), dub in zip(DUBS, dubs, strict=True):
        side += ["--audio", f"{language}={dub}"]
    return ours([source, "--segment-duration", str(SEGMENT_SECONDS), *side], out)


def compare(title: str, jobs: list[tuple[str, Callable[[], Run]]],
            runs: int) -> dict[str, list[Run]]:
    results: dict[str, list[Run]] = {}
    for i in range(runs):
        for name, job in (jobs if i % 2 == 0 else list(reversed(jobs))):
            results.setdefault(name, []).append(job())
    print(f"\n{title}")
    print(f"{'job':<24}{'median s':>10}{'best s':>8}{'CPU s':>8}{'peak RSS MB':>13}   runs")
    for name, done in results.items():
        listed = " ".join(f"{r.seconds:.2f}" for r in done)
        print(f"{name:<24}{statistics.median(r.seconds for r in done):>10.2f}"
              f"{min(r.seconds for r in done):>8.2f}"
              f"{statistics.median(r.cpu_seconds for r in done):>8.2f}"
              f"{max(r.peak_rss_mb for r in done):>13.0f}   {listed}")
    return results


def ratio(results: dict[str, list[Run]], a: str, b: str) -> str:
    """Wall time (median, best) and CPU time (median) of `a` over `b`: on a shared machine
    the CPU ratio is the steadier figure."""
    def median(name: str, cpu: bool = False) -> float:
        return statistics.median(r.cpu_seconds if cpu else r.seconds for r in results[name])

    best = min(r.seconds for r in results[a]) / min(r.seconds for r in results[b])
    return (f"{median(a) / median(b):.3f} (median), {best:.3f} (best), CPU "
            f"{median(a, True) / median(b, True):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transcode-runs", type=int, default=2)
    parser.add_argument("--skip-transcode", action="store_true")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "localize")
    options = parser.parse_args()
    workdir: Path = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    source, single, dubs, texts = make_inputs(workdir)
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    copies = compare("--copy, 4 audio + 6 text languages, HLS + DASH", [
        ("cdnpack --copy", partial(ours_copy, source, dubs, texts, workdir / "ours-copy")),
        ("shaka packager", partial(shaka_copy, source, dubs, texts, workdir / "shaka-copy")),
    ], options.runs)
    print(f"cdnpack / shaka = {ratio(copies, 'cdnpack --copy', 'shaka packager')}")
    if not options.skip_transcode:
        transcodes = compare("transcode, default ladder: 4 audio languages vs 1", [
            ("cdnpack 4 languages", partial(ours_transcode, source, dubs, workdir / "ours-4")),
            ("cdnpack 1 language", partial(ours, [single, "--segment-duration",
                                                  str(SEGMENT_SECONDS)], workdir / "ours-1")),
        ], options.transcode_runs)
        print("4 languages / 1 language = "
              f"{ratio(transcodes, 'cdnpack 4 languages', 'cdnpack 1 language')}")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
