"""Dask support (``pip install riverrun[dask]``).

Example:
    >>> from riverrun import flow
    >>> from riverrun.dask import DaskTaskRunner
    >>> @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 4}))
    ... def crunch(): ...
"""

from riverrun.task_runners.dask import DaskTaskRunner

__all__ = ["DaskTaskRunner"]
