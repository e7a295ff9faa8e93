"""`cdnpack rights check|report`, `package --rights` and `release --rights` as a user runs
them: a gate that exits 1 where a required territory is not licensed, a report to look at,
and every bad rights file one line naming file:line and field, exit 2, nothing written."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import cdnpack_cli
from tests.packager.test_rights_model import write as write_file

RIGHTS = """\
rights:
  - id: jp-hd
    territories: [jpkr]
    start: 2025-03-01T00:00:00Z
    end: 2026-03-01T00:00:00Z
    max_height: 1080
    audio: [ja]
  - id: latam
    territories: [BR, MX]
    start: 2025-09-01T00:00:00Z
"""


def write(directory: Path, text: str, name: str = "rights.yaml") -> Path:
    return write_file(directory, text, name)


@pytest.mark.slow  # four CLI runs
def test_check_gates_on_the_required_territories_at_an_instant(tmp_path: Path) -> None:
    rights = write(tmp_path, RIGHTS)
    ok = cdnpack_cli("rights", "check", rights, "--at", "2025-10-01T00:00:00Z",
                     "--require", "JP", "--require", "BR", "--json")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    by = {t["territory"]: t for t in doc["territories"]}
    assert by["KR"]["grant"]["id"] == "jp-hd"  # jpkr expanded from the shipped regions.yaml
    assert by["BR"]["grant"]["end"] is None
    assert doc["unlicensed_required"] == []
    early = cdnpack_cli("rights", "check", rights, "--at", "2025-08-31T23:59:59.999Z",
                        "--require", "latam", "--json")
    assert early.returncode == 1
    report = json.loads(early.stdout)
    assert report["unlicensed_required"][:2] == ["AR", "BO"]  # latam: regions.yaml's
    brazil = next(t for t in report["territories"] if t["territory"] == "BR")
    assert brazil["next"]["start"] == "2025-09-01T00:00:00Z"
    assert early.stderr.strip().splitlines() == [
        "cdnpack: error: not licensed at 2025-08-31T23:59:59.999Z: " + ", ".join(
            report["unlicensed_required"])]
    closed = cdnpack_cli("rights", "check", rights, "--at", "2026-03-01T00:00:00Z",
                         "--require", "JP")
    assert closed.returncode == 1
    assert "closed 2026-03-01T00:00:00Z (jp-hd)" in closed.stdout
    bad = cdnpack_cli("rights", "check", rights, "--require", "XX")
    assert bad.returncode == 2
    assert bad.stderr.startswith("cdnpack: error: --require XX: XX is not an ISO 3166-1")


def test_report_draws_every_territory_and_title(tmp_path: Path) -> None:
    first = write(tmp_path, RIGHTS)
    second = write(tmp_path, RIGHTS.replace("jpkr", "FR").replace("BR, MX", "DE"),
                   "second.yaml")
    html = tmp_path / "rights.html"
    done = cdnpack_cli("rights", "report", first, second, "--html", html, "--at",
                       "2025-12-04T00:00:00Z", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [t["title"] for t in doc["titles"]] == ["rights", "second"]
    assert doc["titles"][1]["licensed_now"] == ["DE", "FR"]
    page = html.read_text()
    assert page.count("<svg") == 1
    assert "today 2025-12-04" in page
    for code in doc["territories"]:
        assert f">{code} " in page
    assert "jp-hd · ≤1080p · ja · all subs" in page


@pytest.mark.slow  # each probes the source before it is refused
@pytest.mark.parametrize(("name", "grant", "field", "message"), [
    ("unknown country", "    territories: [XX]\n", "territories",
     "XX is not an ISO 3166-1 alpha-2 country code"),
    ("unknown region", "    territories: [atlantis]\n", "territories",
     "'atlantis' is neither a country code"),
    ("end not after start", "    territories: [FR]\n    end: 2024-01-01T00:00:00Z\n", "end",
     "is not after start"),
    ("overlap", "    territories: [FR]\n  - id: b\n    territories: [eu]\n"
     "    start: 2025-06-01T00:00:00Z\n", "territories",
     "FR is in grant 'b' (line 5) and grant 'a' (line 2) at once"),
    ("max height below every rung", "    territories: [FR]\n    max_height: 100\n",
     "max_height", "100 is below every video rendition (the lowest is 240p)"),
    ("a language the title lacks", "    territories: [FR]\n    audio: [fr]\n", "audio",
     "the title has no fr audio (it has: und)"),
])
def test_bad_rights_are_one_line_naming_file_line_and_field(
        source_clip: Path, tmp_path: Path, name: str, grant: str, field: str,
        message: str) -> None:
    text = ("rights:\n  - id: a\n    start: 2025-01-01T00:00:00Z\n" + grant)
    rights = write(tmp_path, text)
    lines = text.splitlines()
    out = tmp_path / "out"
    done = cdnpack_cli("package", source_clip, "-o", out, "--ladder", "compact", "--rights",
                       rights)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"cdnpack: error: {rights}:"), line
    where, _, rest = line.removeprefix(f"cdnpack: error: {rights}:").partition(": ")
    index = 1 if name == "overlap" else 0
    assert rest.startswith(f"rights[{index}].{field}: "), line
    assert message in rest, line
    assert lines[int(where) - 1].strip().startswith(f"{field}:" if field != "territories"
                                                    or name != "overlap" else "territories")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rights.yaml"]  # nothing written


@pytest.mark.slow
def test_release_refuses_a_title_whose_every_window_has_closed(
        source_clip: Path, tmp_path: Path) -> None:
    rights = write(tmp_path, "rights:\n  - id: gone\n    territories: [FR]\n"
                             "    start: 2020-01-01T00:00:00Z\n    end: 2021-01-01T00:00:00Z\n")
    done = cdnpack_cli("release", source_clip, "s3://bucket-x/p", "-o", tmp_path / "out",
                       "--rights", rights, "--endpoint-url", "http://127.0.0.1:9")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"cdnpack: error: {rights}: no grant is in force or upcoming at "
        + done.stderr.split(" at ", 1)[1].strip()]
    assert "the last closed 2021-01-01T00:00:00Z" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rights.yaml"]


def test_rights_twice_is_refused(source_clip: Path, tmp_path: Path) -> None:
    rights = write(tmp_path, RIGHTS)
    title = write(tmp_path, "language: en\n" + RIGHTS, "title.yaml")
    with ThreadPoolExecutor(2) as pool:
        both, alone = pool.map(lambda args: cdnpack_cli(*args), [
            ("package", source_clip, "-o", tmp_path / "a", "--title", title, "--rights",
             rights),
            ("rights", "check", title, "--at", "2025-10-01T00:00:00Z", "--json")])
    assert both.returncode == 2
    assert "has rights: too; keep one of them" in both.stderr
    assert alone.returncode == 0  # a title file's rights: checked as they are
