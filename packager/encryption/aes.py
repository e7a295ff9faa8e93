"""AES for the packager: pycryptodome's, loaded through its ctypes backend.

pycryptodome binds its C code with cffi when cffi can be imported and with ctypes otherwise.
cffi parses every library's C declarations with pycparser at import: about 25 ms of every
`package` run, a third of the whole job on a 2-second source. Only tools (the test suite's
cryptography) bring cffi; a user's install has none, and runs on ctypes. This module makes
every run take that path, so that what is measured is what users get: cffi is hidden from
pycryptodome's first import only (and nothing is changed if pycryptodome is already loaded).

Its ctypes backend asks platform.architecture() once, to know whether it runs on Windows, and
that runs `file` on the interpreter in a subprocess (a fork and an exec for every `package`);
its cache of the answer is filled here instead, from what Python itself knows.
"""

from __future__ import annotations

import struct
import sys


def _load_through_ctypes() -> None:
    if "Crypto.Util._raw_api" in sys.modules:
        return
    missing = object()
    saved = sys.modules.get("cffi", missing)
    sys.modules["cffi"] = None  # type: ignore[assignment]  # import cffi -> ImportError
    try:
        import Crypto.Util._raw_api as raw
    finally:
        if saved is missing:
            del sys.modules["cffi"]
        else:
            sys.modules["cffi"] = saved  # type: ignore[assignment]
    cache = getattr(raw, "cached_architecture", None)
    if isinstance(cache, list) and not cache:
        linkage = "WindowsPE" if sys.platform == "win32" else ""
        cache[:] = [f"{struct.calcsize('P') * 8}bit", linkage]


_load_through_ctypes()

from Crypto.Cipher import AES  # noqa: E402
from Crypto.Util.strxor import strxor  # noqa: E402

__all__ = ["AES", "strxor"]
