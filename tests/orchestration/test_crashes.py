"""The crashed-run rule, with the time and the pid check passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from riverrun.orchestration.crashes import crash_reason, stale_after

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIMIT = stale_after(10)


def reason(
    *,
    hostname: str | None = "here",
    pid: int | None = 42,
    silent_for: timedelta = timedelta(0),
    alive: bool = True,
) -> str | None:
    checked: list[int] = []

    def pid_alive(pid: int) -> bool:
        checked.append(pid)
        return alive

    found = crash_reason(
        hostname=hostname,
        pid=pid,
        last_seen=NOW - silent_for,
        this_host="here",
        now=NOW,
        max_silence=LIMIT,
        pid_alive=pid_alive,
    )
    if hostname != "here":
        assert checked == [], "a pid of another host was looked up here"
    return found


def test_three_intervals_of_silence_are_allowed() -> None:
    assert stale_after(10) == timedelta(seconds=30)
    assert reason(silent_for=timedelta(seconds=30)) is None
    assert reason(silent_for=timedelta(seconds=31)) == "No heartbeat since 2026-03-01 11:59:29 UTC"


def test_a_gone_pid_of_this_host_is_a_crash_at_once() -> None:
    assert reason(alive=False) == "Process 42 on here is gone"
    assert reason(alive=True) is None


def test_pids_of_other_hosts_and_unknown_pids_are_never_checked() -> None:
    assert reason(hostname="there", alive=False) is None
    assert reason(hostname=None, alive=False) is None
    assert reason(pid=None, alive=False) is None
    assert reason(pid=0, alive=False) is None
    assert reason(hostname="there", silent_for=timedelta(hours=1)) is not None
