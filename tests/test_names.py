"""Run ids: version 7 UUIDs, ordered by the time they were made, unique across forks."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest

from riverrun import names
from riverrun.names import new_id

# 2026-11-21T12:00:00Z, in nanoseconds.
_NOON_NS = 1_795_262_400 * 10**9


def _stop_the_clock(monkeypatch: pytest.MonkeyPatch, now_ns: int) -> list[int]:
    clock = [now_ns]
    monkeypatch.setattr(names, "_time_ns", lambda: clock[0])
    return clock


def test_ids_are_version_7_uuids_with_the_rfc_variant() -> None:
    for _ in range(1000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical form: lower case, hyphens in place
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_the_first_48_bits_are_the_unix_time_in_milliseconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stop_the_clock(monkeypatch, _NOON_NS + 999_999)  # rounded down to the millisecond
    parsed = uuid.UUID(new_id())
    assert parsed.int >> 80 == _NOON_NS // 10**6
    assert parsed.version == 7


def test_ids_made_later_sort_after_earlier_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _stop_the_clock(monkeypatch, _NOON_NS)
    made = []
    for step in range(200):
        clock[0] = _NOON_NS + step * 10**6  # one millisecond apart
        made.append(new_id())
    assert sorted(made) == made  # as strings, the way the database orders them
    assert sorted(made, key=uuid.UUID) == made
    assert len(set(made)) == len(made)


def test_ids_within_one_millisecond_are_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    _stop_the_clock(monkeypatch, _NOON_NS)
    made = {new_id() for _ in range(10_000)}
    assert len(made) == 10_000
    assert {text[:13] for text in made} == {new_id()[:13]}  # the same timestamp


def test_user_seeding_does_not_repeat_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    _stop_the_clock(monkeypatch, _NOON_NS)
    random.seed(0)
    first = new_id()
    random.seed(0)
    assert new_id() != first


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_makes_ids_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same millisecond in both processes: only the random bits can tell them apart,
    # and they would repeat the parent's if the child inherited its generator's state.
    _stop_the_clock(monkeypatch, _NOON_NS)
    new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its ids, then vanish
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "w") as out:
                out.write("\n".join(new_id() for _ in range(100)))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as received:
        childs = set(received.read().split())
    _, status = os.waitpid(pid, 0)
    assert status == 0
    parents = {new_id() for _ in range(100)}
    assert len(childs) == 100
    assert all(uuid.UUID(text).version == 7 for text in childs)
    assert not parents & childs


def test_flow_run_ids_are_random_from_their_first_character(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flow runs are shown and looked up by a short prefix of their id: runs made in the
    same millisecond still differ there (task run ids, time-ordered, would not)."""
    _stop_the_clock(monkeypatch, _NOON_NS)
    ids = [names.new_flow_run_id() for _ in range(1000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len({text[:8] for text in ids}) == len(ids)
    assert len({new_id()[:8] for _ in range(100)}) == 1  # the time-ordered ones share it


def test_a_flow_run_is_found_by_the_short_id_shown_for_it(tmp_path: Path) -> None:
    from riverrun import flow
    from riverrun.settings import get_settings, temporary_settings
    from riverrun.store import close_stores, get_store

    @flow
    def quick() -> None:
        return None

    close_stores()
    with temporary_settings(home=str(tmp_path / "home")):
        for _ in range(5):
            quick()
        store = get_store(get_settings())
        runs = store.read_flow_runs()
        assert len(runs) == 5
        for run in runs:
            assert store.read_flow_run(run.id[:8]).id == run.id
        close_stores()
