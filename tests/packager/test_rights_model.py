"""The rights model: a title's `rights:` read into grants (territories expanded, windows in
UTC), the grant in force for a country at an instant, and every mistake named by file:line and
field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from packager.encoding.ladder import Rendition
from packager.errors import InputError
from packager.rights.allowance import allowed, check_rights
from packager.rights.file import load_rights
from packager.rights.instants import epoch_ms, format_instant, parse_instant
from packager.title.file import load_title

REGIONS = {"jpkr": ("JP", "KR"), "latam": ("BR", "AR", "MX"), "empty": ()}
RIGHTS = """\
language: en
rights:
  - id: jp-hd
    territories: [jpkr, TW]
    start: 2025-03-01T00:00:00Z
    end: "2026-03-01T09:00:00+09:00"
    max_height: 1080
  - id: latam-sd
    territories: [latam]
    start: "2025-06-01T00:00:00.250Z"
    max_height: 576
    audio: [es-419, EN]
    subtitles: []
  - id: jp-late
    territories: [JP]
    start: 2026-03-01T00:00:00Z
"""


def write(tmp_path: Path, text: str, name: str = "title.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def at(text: str) -> datetime:
    return parse_instant(text)


def test_a_title_file_with_rights_is_still_a_title_file(tmp_path: Path) -> None:
    path = write(tmp_path, RIGHTS)
    assert load_title(path).language == "en"
    rights = load_rights(path, REGIONS)
    assert [g.id for g in rights.grants] == ["jp-hd", "latam-sd", "jp-late"]


def test_territories_expand_regions_and_windows_are_utc(tmp_path: Path) -> None:
    jp, latam, late = load_rights(write(tmp_path, RIGHTS), REGIONS).grants
    assert jp.territories == ("JP", "KR", "TW")
    assert latam.territories == ("AR", "BR", "MX")
    assert jp.end == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # 09:00+09:00
    assert latam.start == datetime(2025, 6, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    assert latam.end is None
    assert latam.audio == ("es-419", "en")
    assert latam.subtitles == ()
    assert jp.audio is None
    assert jp.subtitles is None
    assert late.max_height is None


def test_the_grant_in_force_at_each_edge_of_its_window(tmp_path: Path) -> None:
    rights = load_rights(write(tmp_path, RIGHTS), REGIONS)
    ms = timedelta(milliseconds=1)
    opens, closes = at("2025-03-01T00:00:00Z"), at("2026-03-01T00:00:00Z")
    assert rights.in_force("KR", opens - ms) is None
    assert rights.in_force("KR", opens).id == "jp-hd"  # type: ignore[union-attr]
    assert rights.in_force("kr", closes - ms).id == "jp-hd"  # type: ignore[union-attr]
    assert rights.in_force("KR", closes) is None  # the end is exclusive
    assert rights.in_force("JP", closes).id == "jp-late"  # type: ignore[union-attr]
    assert rights.in_force("FR", opens) is None
    assert rights.next_opening("BR", opens).id == "latam-sd"  # type: ignore[union-attr]
    assert rights.next_opening("FR", opens) is None
    assert [g.id for g in rights.current_or_upcoming(closes)] == ["latam-sd", "jp-late"]


def test_instants_are_rfc3339_with_an_offset_to_the_millisecond() -> None:
    assert format_instant(at("2025-01-01 10:00:00.5+01:00")) == "2025-01-01T09:00:00.500Z"
    assert epoch_ms(at("2025-01-01T00:00:00.001+00:00")) == 1_735_689_600_001
    assert epoch_ms(at("1970-01-01T00:00:01Z")) == 1000
    for bad in ("2025-01-01", "2025-01-01T00:00:00", "2025-01-01T00:00:00.0001Z", "tomorrow",
                "2025-02-30T00:00:00Z", 20250101):
        with pytest.raises(ValueError, match=r"RFC 3339|offset|millisecond|valid"):
            parse_instant(bad)


GRANT = "rights:\n  - id: a\n    territories: [JP]\n    start: 2025-01-01T00:00:00Z\n"


@pytest.mark.parametrize(("extra", "line", "field", "message"), [
    ("  - id: b\n    territories: [XX]\n    start: 2025-01-01T00:00:00Z\n", 6,
     "rights[1].territories", "XX is not an ISO 3166-1 alpha-2"),
    ("  - id: b\n    territories: [jp]\n    start: 2025-01-01T00:00:00Z\n", 6,
     "rights[1].territories", "in capitals: JP"),
    ("  - id: b\n    territories: [nowhere]\n    start: 2025-01-01T00:00:00Z\n", 6,
     "rights[1].territories", "known: empty, jpkr, latam"),
    ("  - id: b\n    territories: [KR]\n    start: 2025-01-01T00:00:00Z\n"
     "    end: 2025-01-01T00:00:00Z\n", 8, "rights[1].end", "not after start"),
    ("  - id: b\n    territories: [KR, jpkr]\n    start: 2026-01-01T00:00:00Z\n", 6,
     "rights[1].territories", "JP is in grant 'b' (line 5) and grant 'a' (line 2)"),
    ("  - id: a\n    territories: [KR]\n    start: 2025-01-01T00:00:00Z\n", 5,
     "rights[1].id", "duplicate grant id 'a'"),
    ("  - id: B.1\n    territories: [KR]\n    start: 2025-01-01T00:00:00Z\n", 5,
     "rights[1].id", "must be 1-32 of"),
    ("  - id: b\n    territories: [KR]\n    start: 2025-01-01\n", 7, "rights[1].start",
     "no time of day"),
    ("  - id: b\n    territories: [KR]\n    start: 2025-01-01T00:00:00Z\n    audio: [xx-QQ]\n",
     8, "rights[1].audio", "is not a BCP 47 language tag"),
    ("  - id: b\n    territories: [KR]\n    start: 2025-01-01T00:00:00Z\n    max_height: 0\n",
     8, "rights[1].max_height", "must be in"),
    ("  - id: b\n    territories: [NO]\n    start: 2025-01-01T00:00:00Z\n", 6,
     "rights[1].territories", "quote it"),
    ("  - id: b\n    territories: [empty]\n    start: 2025-01-01T00:00:00Z\n", 6,
     "rights[1].territories", "lists no countries"),
    ("  - id: b\n    territory: [KR]\n    start: 2025-01-01T00:00:00Z\n", 6,
     "rights[1].territory", "unknown field"),
])
def test_every_mistake_names_file_line_and_field(
        tmp_path: Path, extra: str, line: int, field: str, message: str) -> None:
    path = write(tmp_path, GRANT + extra, "rights.yaml")
    with pytest.raises(InputError) as caught:
        load_rights(path, REGIONS)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: {field}: "), text
    assert message in text, text


def test_windows_that_only_touch_do_not_overlap(tmp_path: Path) -> None:
    path = write(tmp_path, GRANT.replace("\n    start", "\n    end: 2026-01-01T00:00:00Z\n"
                                         "    start") +
                 "  - id: b\n    territories: [JP]\n    start: 2026-01-01T00:00:00Z\n")
    assert [g.id for g in load_rights(path, REGIONS).grants] == ["a", "b"]


def video(height: int) -> Rendition:
    return Rendition(id=f"video_{height}p", kind="video", codec="h264", bitrate=1, height=height)


def audio(language: str) -> Rendition:
    return Rendition(id=f"audio_{language}", kind="audio", codec="aac", bitrate=1,
                     language=language)


def text(language: str) -> Rendition:
    return Rendition(id=f"text_{language}", kind="text", codec="wvtt", bitrate=0,
                     language=language)


LADDER = [video(1080), video(720), video(480), audio("en"), audio("es-419"), text("fr")]


def test_a_grant_allows_renditions_up_to_max_height_in_its_languages(tmp_path: Path) -> None:
    rights = load_rights(write(tmp_path, RIGHTS), REGIONS)
    everything = allowed(rights.grant("jp-hd"), LADDER)
    assert everything == LADDER
    assert [r.id for r in allowed(rights.grant("latam-sd"), LADDER)] == [
        "video_480p", "audio_en", "audio_es-419"]
    check_rights(rights, [*LADDER, video(360)])


@pytest.mark.parametrize(("grant", "field", "message"), [
    ("    max_height: 360\n", "max_height", "360 is below every video rendition (the lowest "
     "is 480p)"),
    ("    audio: [th]\n", "audio", "the title has no th audio (it has: en, es-419)"),
    ("    subtitles: [fr, de]\n", "subtitles", "the title has no de text (it has: fr)"),
])
def test_a_grant_beyond_the_title_is_named_by_its_line(
        tmp_path: Path, grant: str, field: str, message: str) -> None:
    path = write(tmp_path, GRANT + grant)
    with pytest.raises(InputError) as caught:
        check_rights(load_rights(path, REGIONS), LADDER)
    assert str(caught.value) == f"{path}:5: rights[0].{field}: {message}"
