"""The writer process's own side (``db/writer_child.py``), run as ``WriterProcess`` runs
it, its stdin and stdout driven here frame by frame."""

from __future__ import annotations

import marshal
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from riverrun.db import write_behind
from riverrun.db.rows import micros
from riverrun.db.sqlite import SQLiteDatabase
from riverrun.db.writer_child import ACK, FRAME, lock_name
from riverrun.store import writer

# What the writer for a SQLite file may import of riverrun: nothing of the store, the
# settings or the records.
_RIVERRUN_MODULES = {
    "riverrun.db",
    "riverrun.db.rows",
    "riverrun.db.sqlite",
    "riverrun.db.write_behind",
    "riverrun.db.writer_child",
}
# Standard modules it does not need for SQLite (each cost it a millisecond or more).
_NOT_IMPORTED = {
    "dataclasses",
    "enum",
    "inspect",
    "json",
    "logging",
    "pathlib",
    "pickle",
    "re",
    "socket",
    "threading",
    "typing",
}


def _frame(payload: Any) -> bytes:
    data = b"m" + marshal.dumps(payload)
    return FRAME.pack(len(data)) + data


def _answers(data: bytes) -> list[tuple[int, str]]:
    answers = []
    while data:
        seq, length = ACK.unpack_from(data)
        answers.append((seq, data[ACK.size : ACK.size + length].decode()))
        data = data[ACK.size + length :]
    return answers


def test_the_writer_of_a_sqlite_file_imports_only_what_committing_needs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "child.db"
    url = f"sqlite:///{path}"
    database = SQLiteDatabase(str(path))
    database.migrate(url)
    database.dispose()
    now = micros(datetime.now(UTC))
    lines = [(write_behind.LOG, None, None, 20, "test", f"line {i}", now) for i in range(3)]
    frames = _frame((url, str(tmp_path / "home"), "writer-key", 60.0))
    frames += _frame((1, lines[:2])) + _frame((2, lines[2:]))
    package = str(Path(writer.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", writer._BOOT, package],
        input=frames,
        capture_output=True,
        env=env,
        timeout=60,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    # Ready, then both batches confirmed (in one transaction or two).
    answers = _answers(done.stdout)
    assert answers[0] == (0, "")
    assert sorted(answers[1:]) == [(1, ""), (2, "")]
    with sqlite3.connect(path) as connection:
        messages = [row[0] for row in connection.execute("SELECT message FROM logs ORDER BY id")]
        marks = connection.execute("SELECT writer, seq FROM writer_marks").fetchall()
    assert messages == ["line 0", "line 1", "line 2"]
    assert marks == [("writer-key", 2)]
    # Its lock was in the home folder it was given, and is gone once it finished.
    assert (tmp_path / "home" / "writers").is_dir()
    assert not (tmp_path / "home" / "writers" / lock_name(os.getpid())).exists()

    imported = {
        line.rpartition("|")[2].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "riverrun.db.writer_child" in imported  # the report is this process's
    assert {name for name in imported if name.startswith("riverrun")} == _RIVERRUN_MODULES
    assert sorted(imported & _NOT_IMPORTED) == []
    assert [name for name in imported if name.split(".")[0] == "sqlalchemy"] == []
