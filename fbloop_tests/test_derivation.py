"""The FeedbackDataset version includes the derivation code version: changed code, new version."""

import sys
from pathlib import Path

import pytest

from fbloop_assets.lib.dataset import derivation


def test_the_derivation_code_version_follows_the_deriving_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a stand-in deriving module whose source we can change
    (tmp_path / "fake_derive.py").write_text("def derive(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(derivation, "DERIVING_MODULES", ("fake_derive",))
    derivation.derivation_code_version.cache_clear()
    first = derivation.derivation_code_version()
    derivation.derivation_code_version.cache_clear()
    assert derivation.derivation_code_version() == first  # stable for the same source
    (tmp_path / "fake_derive.py").write_text("def derive(x):\n    return x + 1\n")
    derivation.derivation_code_version.cache_clear()
    changed = derivation.derivation_code_version()
    derivation.derivation_code_version.cache_clear()
    assert changed != first and changed.startswith("dc-") and len(changed) == 15
    sys.modules.pop("fake_derive", None)


def test_the_real_deriving_modules_are_found() -> None:
    derivation.derivation_code_version.cache_clear()
    assert derivation.derivation_code_version().startswith("dc-")
