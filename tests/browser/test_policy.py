"""The browser tests' availability policy: skipped (naming `make test`) on a developer machine
without Chromium or the npm packages, failed under CI; a Chromium that cannot start is reported
as such, never as a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import Browser, BrowserError, missing_parts, unavailable


def test_a_missing_browser_is_a_skip_that_names_make_test_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="make test"):
        unavailable("missing chromium", env={"PATH": "/usr/bin"})


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_a_missing_browser_is_a_failure_under_ci(value: str) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        unavailable("missing chromium", env={"CI": value})


def test_nothing_on_path_means_chromium_and_node_are_missing() -> None:
    missing = missing_parts(env={"PATH": "/nonexistent"})
    assert "chromium" in missing
    assert "node" in missing


def test_a_chromium_that_cannot_start_is_a_launch_error(tmp_path: Path) -> None:
    """The real driver, given a bogus executable: it answers a launch error and exits, which the
    `browser` fixture turns into a skip or (under CI) a failure; it never hangs or passes."""
    needed = [m for m in missing_parts() if m != "chromium"]
    if needed:
        unavailable(f"missing {', '.join(needed)}")
    with pytest.raises(BrowserError, match="did not start"):
        Browser(f"{tmp_path}/no-such-chromium")
