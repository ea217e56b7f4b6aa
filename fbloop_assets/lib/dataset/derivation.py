"""The derivation code version that every FeedbackDataset version includes.

A dataset version is a content address over its inputs and derivation parameters; without the
code that derives the examples, a changed derivation would silently reuse an old folder under
the same id. The code version is a digest of the source of the modules that derive examples
(window and manifest, examples, features as served), so it changes with them by itself: no one
has to remember to bump a number. An edit that changes nothing but the text gives new version
ids for the same rows, which is safe (the examples are derived again, never reused wrongly).
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.util import find_spec
from pathlib import Path

DERIVING_MODULES = (
    "fbloop_assets.lib.dataset.build",
    "fbloop_assets.lib.dataset.examples",
    "fbloop_assets.lib.scoring.context",
    "fbloop_assets.lib.scoring.features",
)


@cache
def derivation_code_version() -> str:
    """``dc-`` and 12 hex digits of the SHA-256 over the deriving modules' source, in a fixed order."""
    digest = hashlib.sha256()
    for name in DERIVING_MODULES:
        spec = find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot find the source of {name}")
        digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return "dc-" + digest.hexdigest()[:12]
