"""Modules loaded on first use (importlib's LazyLoader), for imports only some runs need.

`cdnpack package --copy` of a 2-second source takes tens of milliseconds in all, and a module
such as ffmpeg-python (the graph builder of transcodes and thumbnails) costs 5 ms to import
for nothing when no ffmpeg graph is built. A lazy module is a normal module object whose code
runs when an attribute is first read.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`, its code run on first attribute access (already imported: as is)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
