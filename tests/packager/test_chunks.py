"""A title encoded in chunks equals the title encoded whole: the same segments, every source
frame once (none lost or repeated at a join), continuous decode times, the same picture
quality; encrypted, it decrypts with ffmpeg and Shaka Packager; no job carries a key."""

from __future__ import annotations

import json
import pickle
import statistics
from collections.abc import Callable, Sequence
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest

from packager.encoding.chunks import (
    LEAD_IN,
    MIN_CHUNK_SECONDS,
    MIN_CHUNKED_SECONDS,
    chunk_count,
    parse_chunks,
    plan_chunks,
)
from packager.encoding.jobs import plan_encode, run_encode
from packager.encoding.ladder import load_ladder, plan_renditions
from packager.encoding.media import probe
from packager.encoding.segments import segment_starts
from packager.encryption.spec import EncryptionSpec
from packager.errors import BitstreamError, InputError
from packager.executor import DirectoryStage, JobProgress, LocalExecutor
from packager.keys.source import parse_key
from packager.mp4.isobmff import iter_boxes, parse_fragment
from packager.mp4.stitch import stitch
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.title.file import resolve_title
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import SEGMENT_SECONDS, LocalizedInputs, cdnpack_cli, concat, run

J = TypeVar("J")
R = TypeVar("R")

NTSC = Fraction(30000, 1001)
#: 8 s of 640x360 at 29.97 fps with B-frames and a key frame every 37 frames, so that no
#: source key frame sits on a chunk start: 1 s segments, three chunks of 3, 2 and 3 segments.
SOURCE = ClipSpec(duration=8.0, width=640, height=360, frame_rate="30000/1001",
                  preset="veryfast", keyframe_interval=37)
SEGMENT = 1.0
CHUNKS = 3
KID_HEX = "00112233445566778899aabbccddeeff"
KEY_HEX = "0123456789abcdef0123456789abcdef"
IV_HEX = "000102030405060708090a0b0c0d0e0f"
#: Decoded frames at least this close to the source frame of the same number (PSNR, dB): the
#: frame next to it is about 21 dB away (testsrc2 moves every frame), an encode 37 dB.
SAME_FRAME_DB = 30.0


# --- the plan (no encoding) ----------------------------------------------------------------

def test_chunks_are_runs_of_whole_segments_counted_in_frames() -> None:
    starts = segment_starts(8.0, 1.0, NTSC)
    chunks = plan_chunks(starts, NTSC, 3)
    assert [c.first_frame for c in chunks] == [0, 90, 150]
    assert [c.frames for c in chunks] == [90, 60, None]  # the last runs to the source's end
    assert [c.key_frames for c in chunks] == [(0, 30, 60), (0, 30), (0, 30, 60)]
    assert [c.start for c in chunks] == [0, Fraction(90 * 1001, 30000), Fraction(150 * 1001,
                                                                                   30000)]
    lead_in = int(LEAD_IN * 30)  # a second of frames, rounded up
    assert [c.lead_in for c in chunks] == [0, lead_in, lead_in]
    assert [c.name for c in chunks] == ["chunk_00001", "chunk_00002", "chunk_00003"]


def test_there_are_never_more_chunks_than_segments() -> None:
    assert len(plan_chunks([0.0, 4.0], Fraction(25), 5)) == 2
    assert chunk_count(9, workers=2, duration=10.0, segments=3) == 3


def test_auto_chunks_only_where_a_second_worker_gains() -> None:
    long = 10 * MIN_CHUNKED_SECONDS
    assert chunk_count(None, workers=1, duration=long, segments=150) == 1
    assert chunk_count(None, workers=2, duration=MIN_CHUNKED_SECONDS - 1, segments=15) == 1
    assert chunk_count(None, workers=2, duration=MIN_CHUNKED_SECONDS, segments=30) == 2
    assert chunk_count(None, workers=2, duration=long, segments=150) == 4  # 2 a worker
    # never shorter than MIN_CHUNK_SECONDS
    assert chunk_count(None, workers=32, duration=long, segments=150) == int(
        long // MIN_CHUNK_SECONDS)
    assert chunk_count(1, workers=8, duration=long, segments=150) == 1


def test_chunks_option_is_auto_or_a_positive_count() -> None:
    assert parse_chunks("auto") is None
    assert parse_chunks("4") == 4
    for bad in ("0", "-2", "many"):
        with pytest.raises(InputError, match="--chunks"):
            parse_chunks(bad)


# --- the join, on real chunk encodes -------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_chunks(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Fraction]]:
    """Two chunks of a 2 s 128x72 clip, encoded by the jobs a package would run."""
    work = tmp_path_factory.mktemp("tiny")
    clip = make_clip(work / "tiny.mp4", ClipSpec(duration=2.0, width=128, height=72,
                                                 audio=False))
    media = probe(clip)
    spec = load_ladder("compact")
    renditions = plan_renditions(spec, media, [])
    starts = segment_starts(media.duration, 1.0, Fraction(25))
    chunks = plan_chunks(starts, Fraction(25), 2)
    stage = DirectoryStage(work / "stage")
    jobs = plan_encode(media, renditions, 1.0, starts, chunks, stage, "t")
    parts = []
    for job, result in zip(jobs, map(run_encode, jobs), strict=True):
        (name, key), = result.outputs
        assert job.chunk is not None
        parts.append(work / f"{job.name}-{name}")
        stage.get(key, parts[-1])
    return parts, [c.start for c in chunks]


def test_a_join_keeps_every_frame_and_drops_the_lead_in(
    tiny_chunks: tuple[list[Path], list[Fraction]], tmp_path: Path
) -> None:
    parts, starts = tiny_chunks
    lead_in = Fraction(int(LEAD_IN * 25), 25)
    joined = stitch(parts, starts, tmp_path / "joined.mp4", [Fraction(0), lead_in])
    assert joined.samples == (25, 25)
    assert joined.adjustments == (0,)  # 25 fps: 3600 ticks a frame, nothing to round
    assert timeline(tmp_path / "joined.mp4")[1][0] == 90_000  # tfdt of chunk 2's first


def test_a_join_that_would_lose_a_frame_is_refused(
    tiny_chunks: tuple[list[Path], list[Fraction]], tmp_path: Path
) -> None:
    parts, starts = tiny_chunks
    lead_in = Fraction(int(LEAD_IN * 25), 25)
    late = [starts[0], starts[1] + Fraction(1, 25)]  # chunk 2 placed a frame late: a gap
    with pytest.raises(BitstreamError, match="lost or repeated"):
        stitch(parts, late, tmp_path / "gap.mp4", [Fraction(0), lead_in])


def test_chunks_of_different_encoder_settings_are_not_joined(
    tiny_chunks: tuple[list[Path], list[Fraction]], tmp_path: Path
) -> None:
    parts, starts = tiny_chunks
    other = make_clip(tmp_path / "other.mp4", ClipSpec(duration=1.0, width=96, height=54,
                                                       audio=False))
    refused = tmp_path / "refused.mp4"
    result = run(find_tool("ffmpeg").path, "-v", "error", "-i", other, "-c:v", "libx264",
                 "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4",
                 refused)
    assert result.returncode == 0, result.stderr
    with pytest.raises(BitstreamError, match="sample description"):
        stitch([parts[0], refused], starts, tmp_path / "mixed.mp4")


# --- chunked equals whole (real packages) ------------------------------------------------

@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("chunks") / "source.mp4", SOURCE)


def packaged(source: Path, out: Path, chunks: int, **options: Any) -> PackageResult:
    return package(PackageRequest(source=source, output=out, ladder="compact",
                                  segment_duration=SEGMENT, chunks=chunks, **options),
                   executor=LocalExecutor(2))


@pytest.fixture(scope="module")
def whole(source: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    return packaged(source, tmp_path_factory.mktemp("whole") / "out", 1)


@pytest.fixture(scope="module")
def chunked(source: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    return packaged(source, tmp_path_factory.mktemp("chunked") / "out", CHUNKS)


def videos(result: PackageResult) -> list[str]:
    return [r.id for r in result.release.renditions if r.kind == "video"]


@pytest.mark.slow
def test_the_encode_ran_as_chunk_and_audio_jobs(whole: PackageResult,
                                                chunked: PackageResult) -> None:
    assert (whole.chunks, [j.job for j in whole.encode_jobs]) == (1, ["whole"])
    assert chunked.chunks == CHUNKS
    names = [j.job for j in chunked.encode_jobs]
    assert names[:CHUNKS] == ["chunk_00001", "chunk_00002", "chunk_00003"]
    assert names[CHUNKS:] == [r.id for r in chunked.release.renditions if r.kind == "audio"]
    assert sum(j.media_seconds for j in chunked.encode_jobs[:CHUNKS]) == pytest.approx(
        chunked.media.duration)
    assert len(videos(chunked)) == 2


@pytest.mark.slow
def test_chunked_has_the_whole_encodes_segment_boundaries(
    whole: PackageResult, chunked: PackageResult
) -> None:
    """Every rendition, audio too: the same segments, each with the same decode time, first
    presentation time and duration, in ticks."""
    for rendition in whole.release.renditions:
        ours = timeline(chunked.output / rendition.id)
        assert ours == timeline(whole.output / rendition.id), rendition.id
        assert len(ours) == 8


@pytest.mark.slow
def test_decode_times_are_continuous(chunked: PackageResult) -> None:
    """Each segment's tfdt is the one before plus its samples' durations (ISO/IEC 14496-12
    §8.8.12), across the chunks' joins as inside them."""
    for rendition in chunked.release.renditions:
        segments = timeline(chunked.output / rendition.id)
        for (start, _, duration), (following, _, _) in pairwise(segments):
            assert following == start + duration, rendition.id


@pytest.mark.slow
def test_chunked_frames_have_the_whole_encodes_times_and_types(
    whole: PackageResult, chunked: PackageResult, tmp_path: Path
) -> None:
    """Packet by packet: the same pts, dts and key-frame flag (B-frame reordering and
    composition offsets at the joins included)."""
    for rid in videos(whole):
        ours = packets(joined(chunked.output / rid, tmp_path / "c.mp4"))
        assert ours == packets(joined(whole.output / rid, tmp_path / "w.mp4")), rid


@pytest.mark.slow
def test_chunked_decodes_to_every_source_frame_once(
    source: Path, whole: PackageResult, chunked: PackageResult, tmp_path: Path
) -> None:
    """As many frames as the source, frame n the source's frame n: a frame lost or repeated at
    a join would put every later frame a frame away from its source frame (about 21 dB)."""
    frames = source_frames(source)
    assert frames == 240
    for rid in videos(chunked):
        track = joined(chunked.output / rid, tmp_path / f"{rid}.mp4")
        rendition = next(r for r in chunked.release.renditions if r.id == rid)
        same = frame_psnr(track, source, rendition.width, rendition.height, 0, tmp_path)
        assert len(same) == frames, rid
        assert min(same) >= SAME_FRAME_DB, (rid, same.index(min(same)))
        neighbour = frame_psnr(track, source, rendition.width, rendition.height, 1, tmp_path)
        assert statistics.median(neighbour) < SAME_FRAME_DB - 5, rid  # the test can tell


@pytest.mark.slow
def test_chunked_vmaf_is_within_half_a_point_of_whole(
    source: Path, whole: PackageResult, chunked: PackageResult, tmp_path: Path
) -> None:
    rid = videos(whole)[0]  # 640x360: the source's own size
    scores = [vmaf(joined(result.output / rid, tmp_path / f"{name}.mp4"), source, tmp_path)
              for name, result in (("whole", whole), ("chunked", chunked))]
    assert abs(scores[0] - scores[1]) <= 0.5, scores


# --- variable frame rate ---------------------------------------------------------------

@pytest.mark.slow
def test_a_variable_rate_source_chunks_to_the_whole_encodes_frames(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """fps fills the ladder's grid from a source that drops frames: a chunk's first slot shows
    the source frame a whole encode shows there, even one from before the chunk's seek."""
    work = tmp_path_factory.mktemp("vfr")
    clip = make_clip(work / "vfr.mp4", ClipSpec(duration=6.0, width=320, height=180,
                                                variable_frame_rate=True))
    results = [packaged(clip, work / f"out{n}", n) for n in (1, 3)]
    rid = videos(results[0])[0]
    # The source's first frame is one of the dropped: the grid still starts at 0, so video
    # key frames sit on the plan and video and audio have the same segments.
    assert [r.segments for r in results[0].release.renditions] == [6, 6]
    tracks = [joined(r.output / rid, tmp_path / f"{n}.mp4") for n, r in enumerate(results)]
    assert packets(tracks[1]) == packets(tracks[0])
    same = frame_psnr(tracks[1], tracks[0], 320, 180, 0, tmp_path)
    assert len(same) == len(packets(tracks[0])) > 100
    assert min(same) >= SAME_FRAME_DB


@pytest.mark.slow
def test_a_film_rate_source_chunks_to_the_whole_encodes_times(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """23.976 fps: a frame is 3753.75 ticks of 90 kHz, so frame times are rounded; a chunk's
    times, rounded from its own start, still land on the whole encode's."""
    work = tmp_path_factory.mktemp("film")
    clip = make_clip(work / "film.mp4", ClipSpec(duration=8.0, width=320, height=180,
                                                 frame_rate="24000/1001", preset="veryfast"))
    results = [packaged(clip, work / f"out{n}", n) for n in (1, 4)]
    rid = videos(results[0])[0]
    assert timeline(results[1].output / rid) == timeline(results[0].output / rid)
    tracks = [joined(r.output / rid, tmp_path / f"{n}.mp4") for n, r in enumerate(results)]
    assert packets(tracks[1]) == packets(tracks[0])
    assert len(packets(tracks[0])) == source_frames(clip)


# --- a localized title ----------------------------------------------------------------------

@pytest.mark.slow
def test_a_localized_title_chunks_to_the_whole_titles_audio_and_text(
    localized: PackageResult, localized_inputs: LocalizedInputs, tmp_path: Path
) -> None:
    """Each audio language (the source's two, a dub and a description read from side files)
    is a job over the whole title and the source's subtitle stream one more: their segments
    are byte for byte the whole encode's; the video is joined from two chunks."""
    title = resolve_title(None, localized_inputs.options, default_language="en")
    chunked = package(PackageRequest(source=localized_inputs.source, output=tmp_path / "out",
                                     ladder="compact", segment_duration=SEGMENT_SECONDS,
                                     title=title, chunks=2), executor=LocalExecutor(2))
    assert (localized.chunks, chunked.chunks) == (1, 2)
    audio = [r.id for r in chunked.release.renditions if r.kind == "audio"]
    assert [j.job for j in chunked.encode_jobs] == ["chunk_00001", "chunk_00002", *audio,
                                                     "text"]
    assert len(audio) == 4
    assert ([(r.id, r.segments) for r in chunked.release.renditions]
            == [(r.id, r.segments) for r in localized.release.renditions])

    def media(result: PackageResult, kinds: tuple[str, ...]) -> dict[str, str]:
        ids = {r.id for r in result.release.renditions if r.kind in kinds}
        return {f.path: f.sha256 for f in result.release.files
                if f.rendition in ids and f.role in ("init", "segment")}

    assert media(chunked, ("audio", "text")) == media(localized, ("audio", "text"))
    for rid in videos(chunked):
        assert timeline(chunked.output / rid) == timeline(localized.output / rid), rid


# --- every codec -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("codec", "entry"), [("hevc", "hvc1"), ("av1", "av01")])
def test_every_codec_chunks_to_the_whole_encodes_frames(
    codec: str, entry: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The chunk jobs build their rungs with the codec table, as the whole encode does: x265's
    B-frames and forced IDRs, SVT-AV1's key frames, join like x264's (one sample description,
    the whole encode's packet times)."""
    work = tmp_path_factory.mktemp(codec)
    clip = make_clip(work / "clip.mp4", ClipSpec(duration=4.0, width=320, height=180))
    results = [packaged(clip, work / f"out{n}", n, codecs=(codec,)) for n in (1, 2)]
    rid = videos(results[0])[0]
    tracks = [joined(r.output / rid, tmp_path / f"{n}.mp4") for n, r in enumerate(results)]
    assert packets(tracks[1]) == packets(tracks[0])
    same = frame_psnr(tracks[1], clip, 320, 180, 0, tmp_path)
    assert len(same) == source_frames(clip)
    # Each frame nearer its own source frame than the next one (AV1's capped CRF at 180p puts
    # some frames below SAME_FRAME_DB): a frame lost or repeated at the join would put every
    # later frame nearer its neighbour.
    following = frame_psnr(tracks[1], clip, 320, 180, 1, tmp_path)[:-1]  # the last: no next
    farther = [(n, a, b) for n, (a, b) in enumerate(zip(same, following, strict=False))
               if not a > b]
    assert farther == [], "frames nearer the next source frame than their own"
    assert results[1].release.renditions[0].codec.startswith(entry)


# --- protected chunked releases -----------------------------------------------------------

class PicklingExecutor:
    """Hands the jobs over as a cluster does (pickled) and keeps what it sent."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self._local = LocalExecutor(2)

    @property
    def workers(self) -> int:
        return self._local.workers

    def map(self, fn: Callable[[J], R], jobs: Sequence[J],
            progress: JobProgress | None = None) -> list[R]:
        sent = [pickle.dumps(job) for job in jobs]
        self.sent += sent
        return self._local.map(fn, [pickle.loads(b) for b in sent], progress)


class InspectingStage(DirectoryStage):
    """A directory stage that reads everything the workers put on it before the coordinator
    removes it (the workers hold pickled copies of the stage: what they write is on disk)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.files: list[bytes] = []

    def delete_prefix(self, prefix: str) -> None:
        self.files += [p.read_bytes() for p in sorted((self.root / prefix).rglob("*"))
                       if p.is_file()]
        super().delete_prefix(prefix)


KEY_NEEDLES = [bytes.fromhex(KEY_HEX), KEY_HEX.encode(), KEY_HEX.upper().encode()]


@pytest.fixture(scope="module", params=["cenc", "cbcs"])
def protected(request: pytest.FixtureRequest, source: Path,
              tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[PackageResult, PicklingExecutor, InspectingStage]:
    scheme: str = request.param
    work = tmp_path_factory.mktemp(f"chunked-{scheme}")
    spec = EncryptionSpec(scheme, parse_key(f"{KID_HEX}:{KEY_HEX}"),
                          bytes.fromhex(IV_HEX) if scheme == "cbcs" else None)
    executor, stage = PicklingExecutor(), InspectingStage(work / "stage")
    result = package(PackageRequest(source=source, output=work / "out", ladder="compact",
                                    segment_duration=SEGMENT, chunks=CHUNKS, encryption=spec),
                     executor=executor, stage=stage)
    return result, executor, stage


@pytest.mark.slow
def test_no_job_and_no_staged_file_holds_the_content_key(
    protected: tuple[PackageResult, PicklingExecutor, InspectingStage]
) -> None:
    """Jobs write clear media: the key stays on the coordinator, which encrypts."""
    result, executor, stage = protected
    assert result.chunks == CHUNKS
    assert len(executor.sent) == CHUNKS + 1  # the chunks, the audio
    assert len(stage.files) == 2 * CHUNKS + 1  # two renditions a chunk, the audio
    for blob in executor.sent + stage.files:
        assert not any(needle in blob for needle in KEY_NEEDLES)


@pytest.mark.slow
def test_protected_chunked_release_decrypts_to_the_source_frames_with_both_tools(
    protected: tuple[PackageResult, PicklingExecutor, InspectingStage], source: Path,
    tmp_path: Path
) -> None:
    """Shaka Packager's and ffmpeg's decryptions are the same frames, and those frames are the
    source's, one for one (our x264 ladder encode with VBV on several threads is not
    bit-reproducible, so the clear reference is the source)."""
    result = protected[0]
    for rendition in result.release.renditions:
        rid = rendition.id
        encrypted = joined(result.output / rid, tmp_path / f"{rid}-enc.mp4")
        decrypted = tmp_path / f"{rid}-dec.mp4"
        kind = rendition.kind
        done = run(find_tool("packager").path, f"in={encrypted},stream={kind},output={decrypted}",
                   "--enable_raw_key_decryption", "--keys", f"key_id={KID_HEX}:key={KEY_HEX}")
        assert done.returncode == 0, done.stderr[-500:]
        by_shaka = framemd5(decrypted)
        assert framemd5(encrypted, "-decryption_key", KEY_HEX) == by_shaka, rid
        undecrypted = run(find_tool("ffmpeg").path, "-v", "quiet", "-nostdin", "-i", encrypted,
                          "-map", "0", "-f", "framemd5", "-")
        assert undecrypted.returncode != 0 or by_shaka[0] not in undecrypted.stdout, rid
        if kind == "video":
            same = frame_psnr(decrypted, source, rendition.width, rendition.height, 0, tmp_path)
            assert len(same) == source_frames(source) == len(by_shaka)
            assert min(same) >= SAME_FRAME_DB, rid


# --- the command line -------------------------------------------------------------------

def test_cli_refuses_a_bad_chunk_count_in_one_line(tmp_path: Path) -> None:
    clip = tmp_path / "missing.mp4"  # the option is checked before the source is read
    done = cdnpack_cli("package", clip, "-o", tmp_path / "out", "--chunks", "0")
    assert done.returncode == 2, done.stderr
    assert done.stderr == "cdnpack: error: --chunks '0': the count must be 1 or more (or auto)\n"


@pytest.mark.slow
def test_cli_reports_the_chunks_and_refuses_them_with_copy(source: Path, tmp_path: Path) -> None:
    done = cdnpack_cli("package", source, "-o", tmp_path / "out", "--ladder", "compact",
                       "--segment-duration", "1", "--chunks", "2", "--thumbnails", "2s:2x2:90",
                       "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["chunks"] == 2
    assert [j["job"] for j in doc["encode_jobs"]] == [
        "chunk_00001", "chunk_00002", "thumbnails", "audio_aac_96k"]
    # No job decodes the whole video: the thumbnails are drawn by seeks (0, 2, 4, 6 s).
    assert [(t["interval"], t["sheets"]) for t in doc["thumbnails"]] == [(2.0, 1)]
    copy = cdnpack_cli("package", source, "-o", tmp_path / "copy", "--copy", "--chunks", "2")
    assert copy.returncode == 2, copy.stderr
    assert "--copy" in copy.stderr
    assert not (tmp_path / "copy").exists()


@pytest.mark.slow
def test_a_truncated_source_fails_a_chunked_encode_in_one_line(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(duration=6.0, width=320, height=180,
                                                       movflags="+faststart"))
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    done = cdnpack_cli("package", cut, "-o", tmp_path / "out", "--ladder", "compact",
                       "--segment-duration", "1", "--chunks", "3")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "truncated" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4", "whole.mp4"]


# --- helpers -------------------------------------------------------------------------------

def timeline(path: Path) -> list[tuple[int, int, int]]:
    """(tfdt, earliest presentation time, duration) of each segment (or fragment of a file)."""
    files = sorted(path.glob("seg_*.m4s")) if path.is_dir() else [path]
    out = []
    for file in files:
        data = file.read_bytes()
        for box in iter_boxes(data):
            if box.type == b"moof":
                fragment = parse_fragment(data[box.offset:box.end], b"", with_data=False)
                out.append((fragment.base_decode_time, fragment.earliest_presentation_time,
                            fragment.duration))
    return out


def joined(directory: Path, target: Path) -> Path:
    return concat([directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))], target)


def packets(path: Path) -> list[str]:
    done = run(find_tool("ffprobe").path, "-v", "error", "-select_streams", "v:0",
               "-show_entries", "packet=pts,dts,flags", "-of", "csv", path)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def source_frames(path: Path) -> int:
    done = run(find_tool("ffprobe").path, "-v", "error", "-select_streams", "v:0",
               "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
    return int(done.stdout.strip())


def framemd5(path: Path, *before_input: str) -> list[str]:
    done = run(find_tool("ffmpeg").path, "-v", "error", "-nostdin", *before_input, "-i", path,
               "-map", "0", "-f", "framemd5", "-")
    assert done.returncode == 0, done.stderr[-300:]
    return [line for line in done.stdout.splitlines() if not line.startswith("#")]


def frame_psnr(distorted: Path, reference: Path, width: int, height: int, shift: int,
               work: Path) -> list[float]:
    """PSNR (dB, all planes) of each decoded frame n against the reference's frame n + shift
    (scaled to the distorted size), in order; one value for every decoded frame (past the
    reference's end, its last frame stands in)."""
    stats = work / f"psnr-{distorted.stem}-{shift}.log"
    graph = (f"[1:v]scale={width}:{height},trim=start_frame={shift},setpts=PTS-STARTPTS[r];"
             f"[0:v]setpts=PTS-STARTPTS[d];[d][r]psnr=stats_file={stats}")
    # ffmpeg-full: it decodes AV1 (dav1d) as well as H.264 and HEVC
    done = run(find_tool("ffmpeg-full").path, "-v", "error", "-nostdin", "-i", distorted,
               "-i", reference, "-lavfi", graph, "-f", "null", "-")
    assert done.returncode == 0, done.stderr[-300:]
    values = [dict(f.split(":") for f in line.split())["psnr_avg"]
              for line in stats.read_text().splitlines()]
    return [float("inf") if v == "inf" else float(v) for v in values]


def vmaf(distorted: Path, reference: Path, work: Path) -> float:
    """libvmaf's mean VMAF (model vmaf_v0.6.1) of a track against the source, same size."""
    log = work / f"vmaf-{distorted.stem}.json"
    graph = ("[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];"
             f"[d][r]libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path={log}")
    done = run(find_tool("ffmpeg-full").path, "-v", "error", "-nostdin", "-i", distorted,
               "-i", reference, "-lavfi", graph, "-f", "null", "-")
    assert done.returncode == 0, done.stderr[-300:]
    return float(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"])
