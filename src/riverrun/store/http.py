"""``HttpStore``: runs recorded through a riverrun server (``RIVERRUN_API_URL``).

Like the embedded store, task runs, states and logs are write-behind: an append to a
queue on the hot path, sent by one daemon thread as ``POST /api/events/batch`` every
``flush_interval`` seconds, when a flow run ends and at exit. Creating a flow run, the
cache and the reads are synchronous requests over one pooled connection.

When the server cannot be reached, a flush tries a few times with backoff, then
appends the batch to the spool (``store/spool.py``) and returns: the flow never waits
for the server. Until the backoff has passed, later batches go straight to the spool,
behind the earlier ones; the next flush that reaches the server (or the next process
that opens a store on that URL, such as a ``riverrun`` command) delivers the spool
first, in order. Each event is given its id once, when it is first turned into JSON,
and keeps it through every retry and the spool: the server ignores an id it has.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from riverrun.exceptions import ObjectNotFoundError, StoreUnavailableError
from riverrun.names import new_id
from riverrun.settings import Settings
from riverrun.states import FINAL_TYPES, TYPE_VALUES, State, StateType
from riverrun.store.http_concurrency import ConcurrencyOverHttp
from riverrun.store.protocol import (
    CacheEntry,
    FlowRun,
    LogEntry,
    StateRecord,
    TaskRun,
    log_entry,
    state_snapshot,
)
from riverrun.store.spool import Spool

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpStore"]

logger = logging.getLogger(__name__)

_TASK_RUN, _STATE, _LOG, _FLOW_RUN = 0, 1, 2, 3
#: Events per request (the server takes at most 5,000).
_BATCH = 2000
_EAGER_FLUSH_AT = 5_000
# Pauses between the tries of one delivery: short, since the flow's own thread may be
# the one flushing (at flow end); what still fails is spooled.
_RETRY_PAUSES = (0.05, 0.2)
_MAX_BACKOFF = 10.0
_HUNG_BACKOFF = 60.0
_PAGE = 1000


class _Unavailable(Exception):
    """The server did not take a request (unreachable, 5xx, refused auth).

    Attributes:
        timed_out: it did not answer in time; trying again at once would only make
            the flow wait as long again.
    """

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.timed_out = timed_out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _state_json(state: State | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "type": TYPE_VALUES[state.type],
        "name": state.name,
        "message": state.message,
        "timestamp": state.timestamp.isoformat(),
    }


def _state(data: dict[str, Any] | None) -> State | None:
    if data is None:
        return None
    return State(StateType(data["type"]), data["name"], message=data["message"])


def _flow_run_json(run: FlowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "flow_name": run.flow_name,
        "parameters": run.parameters,
        "tags": list(run.tags),
        "parent_flow_run_id": run.parent_flow_run_id,
        "parent_task_run_id": run.parent_task_run_id,
        "state": _state_json(run.state),
        "run_count": run.run_count,
        "created": _iso(run.created),
        "start_time": _iso(run.start_time),
        "end_time": _iso(run.end_time),
        "hostname": run.hostname,
        "pid": run.pid,
        "heartbeat": _iso(run.heartbeat),
        "entrypoint": run.entrypoint,
        "resume_parameters": run.resume_parameters,
    }


def _flow_run(data: dict[str, Any]) -> FlowRun:
    return FlowRun(
        id=data["id"],
        name=data["name"],
        flow_name=data["flow_name"],
        parameters=data["parameters"],
        tags=data["tags"],
        parent_flow_run_id=data["parent_flow_run_id"],
        parent_task_run_id=data["parent_task_run_id"],
        state=_state(data["state"]),
        run_count=data["run_count"],
        created=_time(data["created"]),
        start_time=_time(data["start_time"]),
        end_time=_time(data["end_time"]),
        hostname=data["hostname"],
        pid=data["pid"],
        heartbeat=_time(data["heartbeat"]),
        entrypoint=data.get("entrypoint"),
        resume_parameters=data.get("resume_parameters"),
    )


def _task_run(data: dict[str, Any]) -> TaskRun:
    return TaskRun(
        id=data["id"],
        name=data["name"],
        task_name=data["task_name"],
        flow_run_id=data["flow_run_id"],
        dynamic_key=data["dynamic_key"],
        tags=data["tags"],
        state=_state(data["state"]),
        run_count=data["run_count"],
        created=_time(data["created"]),
        start_time=_time(data["start_time"]),
        end_time=_time(data["end_time"]),
        cache_key=data["cache_key"],
        upstream_task_run_ids=data["upstream_task_run_ids"],
        subflow_run_id=data["subflow_run_id"],
        task_key=data.get("task_key"),
        result=data.get("result"),
    )


def _cache_entry(data: dict[str, Any]) -> CacheEntry:
    created = _time(data["created"])
    assert created is not None
    return CacheEntry(
        key=data["key"],
        location=data["location"],
        expiration=_time(data["expiration"]),
        created=created,
        task_name=data.get("task_name"),
    )


def _event(tag: int, payload: Any) -> dict[str, Any]:
    """One queued event as the JSON the batch endpoint takes, with its id made now."""
    if tag == _STATE:
        kind, run_id, state_type, name, message, timestamp, run_count, start, end, known = payload
        event = {
            "kind": "state",
            "id": new_id(),
            "run_id": run_id,
            "run_kind": kind,
            "state": {
                "type": state_type,
                "name": name,
                "message": message,
                "timestamp": timestamp.isoformat(),
            },
            "run_count": run_count,
            "start_time": _iso(start),
            "end_time": _iso(end),
        }
        if known is not None:  # a task run's result reference and cache key
            event["result"], event["cache_key"] = known
        return event
    if tag == _LOG:
        entry: LogEntry = payload
        return {
            "kind": "log",
            "log": {
                "id": new_id(),
                "flow_run_id": entry.flow_run_id,
                "task_run_id": entry.task_run_id,
                "level": entry.level,
                "logger": entry.logger,
                "message": entry.message,
                "timestamp": entry.timestamp.isoformat(),
            },
        }
    if tag == _TASK_RUN:
        run = dict(payload)
        for key in ("created", "start_time", "end_time"):
            run[key] = _iso(run[key])
        return {"kind": "task_run", "run": run}
    return {"kind": "flow_run", "run": payload}


class HttpStore(ConcurrencyOverHttp):
    """Records runs through the server at ``settings.api_url``.

    Sends ``settings.api_auth_string`` (HTTP Basic) when set. Batches the server could
    not take are spooled under ``settings.home`` and delivered later (see the module).
    """

    def __init__(self, settings: Settings) -> None:
        assert settings.api_url
        self.url = settings.api_url.rstrip("/")
        self._settings = settings
        self._client = self._new_client()
        self._spool = Spool(settings.home, self.url)
        self._interval = settings.flush_interval
        self._heartbeat_interval = settings.heartbeat_interval
        self._live: set[str] = set()
        self._live_lock = threading.Lock()
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._write_through = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        atexit.register(self.close)
        # What an earlier process could not deliver goes first.
        with contextlib.suppress(_Unavailable):
            self._deliver_spool()

    def __repr__(self) -> str:
        return f"HttpStore({self.url!r})"

    def _new_client(self) -> httpx.Client:
        import httpx

        auth = None
        if self._settings.api_auth_string:
            user, _, password = self._settings.api_auth_string.partition(":")
            auth = httpx.BasicAuth(user, password)
        return httpx.Client(
            base_url=self.url + "/",
            auth=auth,
            # A server that accepts but does not answer holds a flush this long at most
            # (then the batch is spooled): long enough for a batch on a busy server.
            timeout=httpx.Timeout(10.0, connect=2.0),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            headers={"user-agent": "riverrun-http-store"},
        )

    # -- requests -----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """One request; ``_Unavailable`` unless the server answered below 500.

        401 counts as unavailable too: events refused for want of the right auth string
        are spooled, to be delivered once it is set right.
        """
        import httpx

        try:
            response = self._client.request(method, path, json=body)
        except httpx.TransportError as error:
            timed_out = isinstance(error, httpx.TimeoutException)
            raise _Unavailable(f"{type(error).__name__}: {error}", timed_out=timed_out) from error
        if response.status_code >= 500 or response.status_code == 401:
            raise _Unavailable(f"HTTP {response.status_code}: {_detail(response)}")
        return response

    def _read(self, method: str, path: str, body: Any = None) -> Any:
        """A synchronous request whose answer the caller needs."""
        try:
            response = self._call(method, path, body)
        except _Unavailable as error:
            raise StoreUnavailableError(self.url, str(error)) from None
        if response.status_code >= 400:
            raise StoreUnavailableError(
                self.url, f"HTTP {response.status_code}: {_detail(response)}"
            )
        return response.json()

    def _post_events(self, events: list[dict[str, Any]]) -> None:
        """Send one batch. Events the server refuses for their content (422) are found
        by halving the batch, and dropped with a logged error: retrying cannot help."""
        response = self._call("POST", "events/batch", {"events": events})
        if response.status_code == 409:  # two deliveries raced; the retry is a no-op
            raise _Unavailable(f"HTTP 409: {_detail(response)}")
        if response.status_code < 400:
            return
        if len(events) == 1:
            logger.error(
                "The server refused a run-history event (HTTP %d: %s): %r",
                response.status_code,
                _detail(response),
                events[0],
            )
            return
        middle = len(events) // 2
        self._post_events(events[:middle])
        self._post_events(events[middle:])

    def _post_with_retries(self, events: list[dict[str, Any]]) -> None:
        for pause in (*_RETRY_PAUSES, None):
            try:
                self._post_events(events)
                return
            except _Unavailable as error:
                if pause is None or self._closed or error.timed_out:
                    raise
                time.sleep(pause)

    def _deliver_spool(self) -> None:
        delivered = self._spool.deliver(self._post_events)
        if delivered:
            logger.info("Delivered %d spooled batch(es) to %s", delivered, self.url)

    # -- synchronous writes -------------------------------------------------------------

    def create_flow_run(self, run: FlowRun) -> None:
        now = datetime.now(UTC)
        if run.created is None:
            run.created = now
        if run.heartbeat is None:
            run.heartbeat = now
        payload = _flow_run_json(run)
        if time.monotonic() < self._retry_at or self._spool.pending():
            # The server is away (or its backlog is not delivered yet): the run goes
            # through the queue, so that it reaches the server before its events.
            self._enqueue((_FLOW_RUN, payload))
        else:
            try:
                response = self._call("POST", "flow_runs/", payload)
            except _Unavailable as error:
                logger.warning(
                    "Could not reach %s (%s); spooling the run's history", self.url, error
                )
                self._back_off(error)
                self._enqueue((_FLOW_RUN, payload))
                self.flush()
            else:
                if response.status_code >= 400:
                    raise StoreUnavailableError(
                        self.url, f"HTTP {response.status_code}: {_detail(response)}"
                    )
        if run.state is None or run.state.type not in FINAL_TYPES:
            with self._live_lock:
                self._live.add(run.id)
            if self._thread is None:
                self._start_flusher()

    def write_cache_entry(self, entry: CacheEntry) -> None:
        self._read(
            "POST",
            "cache_entries/",
            {
                "key": entry.key,
                "location": entry.location,
                "expiration": _iso(entry.expiration),
                "created": entry.created.isoformat(),
                "task_name": entry.task_name,
            },
        )

    def delete_cache_entries(
        self, *, task_name: str | None = None, key: str | None = None
    ) -> list[CacheEntry]:
        removed = self._read("POST", "cache_entries/delete", {"task_name": task_name, "key": key})
        return [_cache_entry(data) for data in removed]

    def restart_flow_run(self, run: FlowRun, state: State) -> bool:
        self.flush()  # the run's own earlier events first
        body = {"state": _state_json(state), "hostname": run.hostname, "pid": run.pid}
        moved = bool(
            self._read("POST", f"flow_runs/{quote(run.id, safe='')}/restart", body)["moved"]
        )
        if moved:
            run.state, run.end_time = state, None
            with self._live_lock:
                self._live.add(run.id)
            if self._thread is None:
                self._start_flusher()
        return moved

    # -- write-behind -------------------------------------------------------------------

    def record_task_run(self, run: TaskRun) -> None:
        self._enqueue(
            (
                _TASK_RUN,
                {
                    "id": run.id,
                    "name": run.name,
                    "task_name": run.task_name,
                    "flow_run_id": run.flow_run_id,
                    "dynamic_key": run.dynamic_key,
                    "tags": list(run.tags),
                    "state": None,
                    "run_count": run.run_count,
                    "created": run.created or datetime.now(UTC),
                    "start_time": run.start_time,
                    "end_time": run.end_time,
                    "cache_key": run.cache_key,
                    "upstream_task_run_ids": list(run.upstream_task_run_ids),
                    "subflow_run_id": run.subflow_run_id,
                    "task_key": run.task_key,
                    "result": run.result,
                },
            )
        )
        if run.state is not None:
            self.set_state(run, run.state)

    def set_state(self, run: FlowRun | TaskRun, state: State) -> None:
        snapshot = state_snapshot(run, state)  # rows are built by the flusher
        if snapshot[0] == "flow" and state.type in FINAL_TYPES:
            with self._live_lock:
                self._live.discard(run.id)
        self._enqueue((_STATE, snapshot))

    def record_log(self, entry: LogEntry) -> None:
        self._enqueue((_LOG, entry))

    def record_log_line(
        self,
        flow_run_id: str | None,
        task_run_id: str | None,
        level: int,
        logger: str,
        message: str,
        created: float,
    ) -> None:
        self.record_log(log_entry(flow_run_id, task_run_id, level, logger, message, created))

    def _enqueue(self, event: tuple[int, Any]) -> None:
        self._queue.append(event)
        if self._write_through:
            self.flush()
            return
        if self._thread is None:
            self._start_flusher()
        if len(self._queue) >= _EAGER_FLUSH_AT and not self._wake.is_set():
            self._wake.set()

    def _start_flusher(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._flush_forever, name="riverrun-http-flush", daemon=True
                )
                self._thread.start()

    def _flush_forever(self) -> None:
        next_beat = time.monotonic() + self._heartbeat_interval
        while not self._closed:
            self._wake.wait(min(self._interval, max(next_beat - time.monotonic(), 0.0)))
            self._wake.clear()
            try:
                self.flush()
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + self._heartbeat_interval
            except Exception:
                logger.exception("Could not record runs through %s; will retry", self.url)
                time.sleep(min(self._interval * 5, 2.0))

    def _beat(self) -> None:
        with self._live_lock:
            live = list(self._live)
        if live and time.monotonic() >= self._retry_at:
            with contextlib.suppress(_Unavailable):
                self._call("POST", "flow_runs/heartbeat", {"ids": live})

    def flush(self) -> None:
        """Send every queued event (after any spooled ones); never waits for a server
        that is away: what it cannot send now is spooled, durable when this returns."""
        with self._flush_lock:
            count = len(self._queue)
            if not count and (not self._spool.pending() or time.monotonic() < self._retry_at):
                return
            events = [_event(*self._queue.popleft()) for _ in range(count)]
            batches = [events[start : start + _BATCH] for start in range(0, count, _BATCH)]
            if time.monotonic() < self._retry_at:
                for batch in batches:
                    self._spool.append(batch)
                return
            sent = 0
            try:
                self._deliver_spool()
                for batch in batches:
                    self._post_with_retries(batch)
                    sent += 1
            except _Unavailable as error:
                for batch in batches[sent:]:
                    self._spool.append(batch)
                backoff = self._back_off(error)
                logger.warning(
                    "Could not reach %s (%s); spooled %d event(s) to %s, retrying in %.1fs",
                    self.url,
                    error,
                    sum(len(batch) for batch in batches[sent:]),
                    self._spool.path,
                    backoff,
                )
            else:
                self._failures = 0
                self._retry_at = 0.0

    def _back_off(self, error: _Unavailable) -> float:
        """Send nothing for a while after a failure; return how long (seconds)."""
        self._failures += 1
        backoff = min(0.25 * 2.0**self._failures, _MAX_BACKOFF)
        if error.timed_out:
            # A server that accepts and does not answer is not coming back in a moment,
            # and each try would hold the flow for a whole timeout.
            backoff = _HUNG_BACKOFF
        self._retry_at = time.monotonic() + backoff
        return backoff

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child (the parent's queue and connections are its
        own); a child sends each event as it comes, having no flusher it can trust to
        run before it exits."""
        self._queue.clear()
        self._client = self._new_client()
        self._live = set()
        self._live_lock = threading.Lock()
        self._write_through = True
        self._flush_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None

    def close(self) -> None:
        """Send (or spool) what is queued and close the connections."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        finally:
            atexit.unregister(self.close)
            self._client.close()

    # -- crash detection ----------------------------------------------------------------

    def mark_crashed_runs(self) -> list[str]:
        self.flush()
        crashed: list[str] = self._read("POST", "flow_runs/mark_crashed")["ids"]
        with self._live_lock:
            self._live.difference_update(crashed)
        return crashed

    # -- reads --------------------------------------------------------------------------

    def _pages(self, path: str, body: dict[str, Any], limit: int | None) -> Iterator[Any]:
        offset = 0
        while limit is None or offset < limit:
            size = _PAGE if limit is None else min(_PAGE, limit - offset)
            page = self._read("POST", path, {**body, "limit": size, "offset": offset})
            yield from page
            if len(page) < size:
                return
            offset += size

    def read_cache_entry(self, key: str) -> CacheEntry | None:
        data = self._read("POST", "cache_entries/read", {"key": key})
        return None if data is None else _cache_entry(data)

    def read_flow_runs(
        self,
        *,
        limit: int | None = None,
        state_names: list[str] | None = None,
        flow_name: str | None = None,
    ) -> list[FlowRun]:
        self.flush()
        body: dict[str, Any] = {"state_names": state_names or None, "flow_name": flow_name or None}
        return [_flow_run(data) for data in self._pages("flow_runs/filter", body, limit)]

    def read_flow_run(self, flow_run_id: str) -> FlowRun:
        self.flush()
        try:
            response = self._call("GET", "flow_runs/" + quote(flow_run_id, safe=""))
        except _Unavailable as error:
            raise StoreUnavailableError(self.url, str(error)) from None
        if response.status_code in (404, 422):
            raise ObjectNotFoundError("flow run", flow_run_id)
        if response.status_code >= 400:
            raise StoreUnavailableError(
                self.url, f"HTTP {response.status_code}: {_detail(response)}"
            )
        return _flow_run(response.json())

    def read_task_runs(self, flow_run_id: str) -> list[TaskRun]:
        self.flush()
        body = {"flow_run_id": flow_run_id}
        return [_task_run(data) for data in self._pages("task_runs/filter", body, None)]

    def read_states(self, run_id: str) -> list[StateRecord]:
        self.flush()
        return [
            StateRecord(
                run_id=data["run_id"],
                type=data["type"],
                name=data["name"],
                message=data["message"],
                timestamp=_time(data["timestamp"]) or datetime.now(UTC),
            )
            for data in self._read("POST", "states/filter", {"run_id": run_id})
        ]

    def read_logs(self, flow_run_id: str) -> list[LogEntry]:
        self.flush()
        return [
            LogEntry(
                flow_run_id=data["flow_run_id"],
                task_run_id=data["task_run_id"],
                level=data["level"],
                logger=data["logger"],
                message=data["message"],
                timestamp=_time(data["timestamp"]) or datetime.now(UTC),
            )
            for data in self._pages("logs/filter", {"flow_run_id": flow_run_id}, None)
        ]


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:200]
    return str(detail)[:500]
