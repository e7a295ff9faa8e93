"""What ingest reads of regions.yaml: regions with their countries, and the CDNs' hosts.

A protocol, not probes.config itself: real-viewer data sits below the probes' scoring in the
flow (score and gate read RUM.jsonl beside the probe results), so rum/ must not import probes/.
probes.config.ProbeConfig is a Geography as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class RegionCountries(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def countries(self) -> tuple[str, ...]: ...


class CdnHost(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def base_url(self) -> str: ...


class Geography(Protocol):
    @property
    def regions(self) -> Sequence[RegionCountries]: ...

    @property
    def cdns(self) -> Sequence[CdnHost]: ...
