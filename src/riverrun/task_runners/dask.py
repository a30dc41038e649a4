"""Run tasks on a Dask cluster: a ``LocalCluster`` of processes, or any scheduler.

Needs ``pip install riverrun[dask]``; imported from ``riverrun.dask``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from riverrun.engine.dispatcher import set_exception, set_result
from riverrun.exceptions import TaskRunnerError

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskTaskRunner"]

T = TypeVar("T")


class DaskTaskRunner:
    """Runs each submitted task on a Dask worker.

    By default a ``distributed.LocalCluster`` (worker processes on this machine) is
    started for the flow run and closed when it ends. With ``address`` the runner
    connects to an existing scheduler (``"tcp://10.0.0.5:8786"``) and leaves the cluster
    running. With ``cluster_class`` any Dask cluster manager is created instead (a class,
    or its import path such as ``"dask_jobqueue.SLURMCluster"``).

    Task states, log lines and results travel back with each task's result and are
    recorded by the flow's process, so workers need no access to the run history.

    Args:
        cluster_class: the cluster manager to start; default ``distributed.LocalCluster``.
        cluster_kwargs: keyword arguments for it (``{"n_workers": 4}``).
        address: the address of a running scheduler to use instead of starting one.
        client_kwargs: keyword arguments for ``distributed.Client``.
    """

    remote = True

    def __init__(
        self,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        address: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if address is not None and (cluster_class is not None or cluster_kwargs):
            raise ValueError("Give either address= or cluster_class/cluster_kwargs, not both")
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string like 'tcp://host:8786', got {address!r}")
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.address = address
        self.client_kwargs = dict(client_kwargs or {})
        self._client: distributed.Client | None = None
        self._cluster: Any = None
        self._lock = threading.Lock()
        # Dask forgets (and cancels) a task whose future nobody holds: keep each one
        # until it is done.
        self._in_flight: dict[str, distributed.Future[Any]] = {}
        self._closed = False

    def __repr__(self) -> str:
        where = f"address={self.address!r}" if self.address else f"cluster={self._cluster_name()}"
        return f"DaskTaskRunner({where})"

    def duplicate(self) -> DaskTaskRunner:
        return DaskTaskRunner(
            cluster_class=self.cluster_class,
            cluster_kwargs=self.cluster_kwargs or None,
            address=self.address,
            client_kwargs=self.client_kwargs or None,
        )

    @property
    def client(self) -> distributed.Client:
        """The Dask client, connecting (or starting the cluster) on first use."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is shut down: its flow run has ended")
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _cluster_name(self) -> str:
        cls = self.cluster_class
        if cls is None:
            return "LocalCluster"
        return cls if isinstance(cls, str) else getattr(cls, "__name__", repr(cls))

    def _connect(self) -> distributed.Client:
        try:
            import distributed
        except ImportError as error:
            raise ImportError(
                "DaskTaskRunner needs Dask's distributed package: pip install 'riverrun[dask]'"
            ) from error
        if self.address is not None:
            try:
                return distributed.Client(self.address, **self.client_kwargs)
            except OSError as error:
                raise TaskRunnerError(
                    f"Could not connect to the Dask scheduler at {self.address}: {error}"
                ) from error
        cluster_class = self._resolve_cluster_class(distributed)
        self._cluster = cluster_class(**self.cluster_kwargs)
        return distributed.Client(self._cluster, **self.client_kwargs)

    def _resolve_cluster_class(self, distributed: Any) -> Callable[..., Any]:
        cls = self.cluster_class
        if cls is None:
            return distributed.LocalCluster  # type: ignore[no-any-return]
        if not isinstance(cls, str):
            return cls
        module_name, _, attribute = cls.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]
        except (ImportError, AttributeError, ValueError) as error:
            raise ValueError(f"cluster_class {cls!r} cannot be imported: {error}") from None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        client = self.client
        dask_future = client.submit(fn, *args, pure=False)
        key = str(dask_future.key)
        self._in_flight[key] = dask_future
        # Left pending (not "running"), so that the flow can still cancel it: that
        # cancels the Dask task too.
        result: Future[T] = Future()

        def settle(done: distributed.Future[Any]) -> None:
            self._in_flight.pop(key, None)
            try:
                if done.status == "finished":
                    set_result(result, done.result())
                elif done.status == "cancelled":
                    result.cancel()
                else:
                    set_exception(result, done.exception())
            except BaseException as error:  # the cluster went away while fetching
                set_exception(result, error)

        def cancel_dask_task(done: Future[T]) -> None:
            if done.cancelled():
                dask_future.cancel()

        dask_future.add_done_callback(settle)
        result.add_done_callback(cancel_dask_task)
        return result

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            client, self._client = self._client, None
            cluster, self._cluster = self._cluster, None
            self._closed = True
        self._in_flight.clear()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
