"""fbloop's database is part of the `fbloop` resource: configured, replaceable, resolved at run time."""

from pathlib import Path

import pytest
import sqlalchemy as sa

from fbloop_assets.defs.resources import FbloopResource
from fbloop_assets.lib.common.store import EMBEDDED_STORE
from fbloop_assets.lib.weights.decisions import Decisions


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_a_configured_database_url_replaces_the_embedded_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    resource = FbloopResource(data_dir=str(tmp_path / "data"), database_url=url)
    engine = resource.store()
    assert str(engine.url) == url and {"alias_moves", "loop_decisions"} <= _tables(engine)
    assert Decisions(engine).all() == []
    assert not (tmp_path / "data" / EMBEDDED_STORE).exists()


def test_empty_means_the_environment_at_run_time_else_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = FbloopResource(data_dir=str(tmp_path / "data"))  # built before the variable is set
    monkeypatch.setenv("FBLOOP_DATABASE_URL", f"sqlite:///{tmp_path / 'from-env.sqlite'}")
    assert str(resource.store().url).endswith("from-env.sqlite")
    monkeypatch.delenv("FBLOOP_DATABASE_URL")
    assert str(resource.store().url) == f"sqlite:///{tmp_path / 'data' / EMBEDDED_STORE}"
