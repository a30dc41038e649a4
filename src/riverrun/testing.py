"""An isolated harness for tests: a fresh ``RIVERRUN_HOME`` and database per test.

Example (pytest):
    >>> from riverrun.testing import riverrun_test_harness
    >>> def test_pipeline(tmp_path):
    ...     with riverrun_test_harness(tmp_path) as store:
    ...         pipeline()
    ...         assert store.read_flow_runs()[0].state.is_completed()
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from riverrun.logging import reset_logging
from riverrun.settings import get_settings
from riverrun.store import RunStore, close_stores, get_store

__all__ = ["riverrun_test_harness"]

_VARIABLES = ("RIVERRUN_HOME", "RIVERRUN_DATABASE_URL", "RIVERRUN_API_URL")


@contextmanager
def riverrun_test_harness(home: Path, database_url: str | None = None) -> Iterator[RunStore]:
    """Point riverrun at ``home`` (and ``database_url``, if given) inside the block.

    Yields the store the runs inside the block are recorded in. On leaving, stores are
    flushed and closed and the environment is put back as it was.
    """
    saved = {name: os.environ.get(name) for name in _VARIABLES}
    close_stores()
    reset_logging()
    os.environ["RIVERRUN_HOME"] = str(home)
    os.environ.pop("RIVERRUN_API_URL", None)
    if database_url is None:
        os.environ.pop("RIVERRUN_DATABASE_URL", None)
    else:
        os.environ["RIVERRUN_DATABASE_URL"] = database_url
    try:
        yield get_store(get_settings())
    finally:
        close_stores()
        reset_logging()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
