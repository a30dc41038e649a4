"""An isolated harness for tests: a fresh ``RIVERRUN_HOME`` and database per test.

Example (pytest):
    >>> from riverrun.testing import riverrun_test_harness
    >>> def test_pipeline(tmp_path):
    ...     with riverrun_test_harness(tmp_path) as store:
    ...         pipeline()
    ...         assert store.read_flow_runs()[0].state.is_completed()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from riverrun.logging import reset_logging
from riverrun.settings import get_settings, temporary_settings
from riverrun.store import RunStore, close_stores, get_store

__all__ = ["riverrun_test_harness"]


@contextmanager
def riverrun_test_harness(
    home: Path, database_url: str | None = None, *, api_url: str | None = None
) -> Iterator[RunStore]:
    """Point riverrun at ``home`` (and ``database_url``, or a server's ``api_url``, if
    given) inside the block.

    Yields the store the runs inside the block are recorded in. On leaving, stores are
    flushed and closed and the environment is put back as it was.
    """
    close_stores()
    reset_logging()
    try:
        with temporary_settings(home=str(home), database_url=database_url, api_url=api_url):
            yield get_store(get_settings())
    finally:
        close_stores()
        reset_logging()
