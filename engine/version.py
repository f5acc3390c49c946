"""The version of spkemb, as the installed package says it (``--version``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("spkemb")
except PackageNotFoundError:  # a checkout on sys.path that pip never installed
    VERSION = "unknown (not installed)"
