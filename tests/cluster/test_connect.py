"""The cluster options are refused in one line before anything starts (exit 2); a scheduler that
cannot be reached is an environment failure (exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.connect import ClusterError, ClusterSpec, cluster_spec, connect, scheduler_address
from packager.errors import InputError


@pytest.mark.parametrize(("given", "tls", "address"), [
    ("tcp://10.0.0.5:8786", False, "tcp://10.0.0.5:8786"),
    ("scheduler.internal", False, "tcp://scheduler.internal:8786"),
    ("10.0.0.5:9000", True, "tls://10.0.0.5:9000"),
    ("tls://[::1]:8786", True, "tls://[::1]:8786"),
])
def test_a_scheduler_address_takes_dask_s_forms(given: str, tls: bool, address: str) -> None:
    assert scheduler_address(given, tls) == address


@pytest.mark.parametrize(("given", "tls", "message"), [
    ("ucx://10.0.0.5:8786", False, "speaks tcp:// and tls://"),
    ("tls://10.0.0.5:8786", False, "needs --tls-ca, --tls-cert and --tls-key"),
    ("tcp://10.0.0.5:8786", True, "need a tls:// address"),
    ("tcp://10.0.0.5:99999", False, "out of range"),
    ("http://a b", False, "expected tcp://HOST:PORT"),
])
def test_a_wrong_scheduler_address_is_one_line(given: str, tls: bool, message: str) -> None:
    with pytest.raises(InputError, match=message):
        scheduler_address(given, tls)


def test_tls_needs_all_three_readable_files_and_a_scheduler(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(InputError, match=r"--tls-cert, --tls-key missing"):
        cluster_spec("tls://h:1", None, ca, None, None)
    with pytest.raises(InputError, match=r"--tls-cert .*nope.pem: no such readable file"):
        cluster_spec("tls://h:1", None, ca, tmp_path / "nope.pem", ca)
    with pytest.raises(InputError, match=r"are for a --scheduler given by address"):
        cluster_spec(None, None, ca, ca, ca)
    spec = cluster_spec("h", 3, ca, ca, ca)
    assert (spec.scheduler, spec.workers, spec.tls is not None) == ("tls://h:8786", 3, True)
    with pytest.raises(InputError, match=r"--workers must be at least 1"):
        cluster_spec(None, 0, None, None, None)


@pytest.mark.slow
def test_an_unreachable_scheduler_is_exit_3_in_one_line() -> None:
    with pytest.raises(ClusterError, match=r"^cannot reach the Dask scheduler at "
                       r"tcp://127.0.0.1:9: Timed out .* after 1 s$") as caught, \
            connect(ClusterSpec("tcp://127.0.0.1:9", connect_timeout=1)):
        pass
    assert caught.value.exit_code == 3
