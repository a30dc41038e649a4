"""The page at ``/``: the latest flow runs, until the UI of a later issue replaces it.

Every value shown is escaped: run names, flow names and state messages come from
whoever records runs, and must never become markup in a reader's browser.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from riverrun.db import history
from riverrun.db.engine import read_connection

__all__ = ["router"]

router = APIRouter()

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>riverrun</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}</style>
</head><body><h1>riverrun: latest flow runs</h1>
<p>API: <a href="/api/docs">/api/docs</a></p>
<table><thead><tr><th>id</th><th>name</th><th>flow</th><th>state</th><th>created</th>
<th>message</th></tr></thead><tbody>
{rows}
</tbody></table></body></html>
"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request) -> HTMLResponse:
    with read_connection(request.app.state.engine) as connection:
        runs = history.page_flow_runs(connection, limit=50)
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{escape(value)}</td>"
            for value in (
                run.id[:8],
                run.name,
                run.flow_name,
                run.state.name if run.state else "",
                f"{run.created:%Y-%m-%d %H:%M:%S}" if run.created else "",
                (run.state.message or "")[:200] if run.state else "",
            )
        )
        + "</tr>"
        for run in runs
    )
    return HTMLResponse(_PAGE.format(rows=rows or '<tr><td colspan="6">No runs yet</td></tr>'))
