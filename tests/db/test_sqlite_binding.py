"""How riverrun's SQLite module has ``sqlite3`` bind ``None`` (see ``bind_none_directly``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from riverrun.db.sqlite import SQLiteDatabase


def test_none_is_adapted_by_the_registered_adapter_and_still_stored_as_null(
    tmp_path: Path,
) -> None:
    adapter = sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)]
    assert adapter(None) is None
    database = SQLiteDatabase(str(tmp_path / "binding.db"))
    try:
        with database.write() as driver:
            driver.query("CREATE TABLE t (a TEXT, b INTEGER)")
            driver.executemany("INSERT INTO t VALUES (?, ?)", [(None, None), ("x", 1)])
        with database.read() as driver:
            rows = driver.query("SELECT a IS NULL, b IS NULL, typeof(a) FROM t ORDER BY rowid")
    finally:
        database.dispose()
    assert [tuple(row) for row in rows] == [(1, 1, "null"), (0, 0, "text")]


def test_a_programs_own_adapter_for_none_is_kept() -> None:
    # Registered before riverrun is imported: riverrun must not replace it.
    script = textwrap.dedent(
        """
        import sqlite3

        def mine(value):
            return "none"

        sqlite3.register_adapter(type(None), mine)
        import riverrun.db.sqlite

        connection = sqlite3.connect(":memory:")
        print(connection.execute("SELECT ?", (None,)).fetchone()[0])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
