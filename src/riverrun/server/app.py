"""The FastAPI application: the routes, the error answers and the middlewares."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from riverrun import __version__
from riverrun.db.engine import create_db_engine, migrate, redacted
from riverrun.exceptions import ObjectNotFoundError
from riverrun.orchestration import IllegalTransitionError
from riverrun.server import concurrency, routes, ui
from riverrun.server.security import BasicAuthMiddleware, BodyLimitMiddleware
from riverrun.settings import Settings, get_settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the API over ``settings.database_url`` (migrated to the head first).

    Args:
        settings: where the database is and whether an auth string is required; the
            process's settings when ``None``.
        engine: an engine to use instead of one made from ``settings`` (tests).
    """
    settings = settings or get_settings()
    if engine is None:
        engine = create_db_engine(settings.database_url)
    migrate(engine)
    app = FastAPI(
        title="riverrun",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.heartbeat_interval = settings.heartbeat_interval
    app.include_router(routes.router)
    app.include_router(concurrency.router)
    app.include_router(ui.router)
    _add_error_answers(app)
    # Outermost last: the body limit applies before anything reads the body, and the
    # auth check before that.
    app.add_middleware(BodyLimitMiddleware)
    if settings.server_api_auth_string:
        app.add_middleware(BasicAuthMiddleware, auth_string=settings.server_api_auth_string)
    logger.info("riverrun API over %s", redacted(engine.url))
    return app


def _add_error_answers(app: FastAPI) -> None:
    @app.exception_handler(ObjectNotFoundError)
    async def not_found(request: Request, error: ObjectNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(IllegalTransitionError)
    async def illegal(request: Request, error: IllegalTransitionError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": f"{error} (set force=true to record it anyway)",
                "current": error.current.value if error.current else None,
                "proposed": error.proposed.value,
            },
            status_code=409,
        )

    @app.exception_handler(IntegrityError)
    async def conflict(request: Request, error: IntegrityError) -> JSONResponse:
        # Two deliveries of one event raced past the duplicate check: the loser's
        # transaction rolled back whole; retrying it records nothing twice.
        return JSONResponse(
            {"detail": f"Conflicts with a record stored meanwhile; retry: {_first_line(error)}"},
            status_code=409,
        )

    @app.exception_handler(OperationalError)
    async def unavailable(request: Request, error: OperationalError) -> JSONResponse:
        logger.error("Database unavailable: %s", _first_line(error))
        return JSONResponse({"detail": "The database is unavailable; retry later"}, status_code=503)

    @app.exception_handler(DataError)
    async def refused(request: Request, error: DataError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"The database refused a value: {_first_line(error)}"}, status_code=422
        )

    @app.exception_handler(StatementError)
    async def unstorable(request: Request, error: StatementError) -> JSONResponse:
        # Raised before the statement reached the database: a value no column takes
        # (a date out of range, text no encoding can hold).
        if isinstance(error.orig, ValueError | OverflowError | UnicodeError):
            return JSONResponse(
                {"detail": f"A value cannot be stored: {_first_line(error)}"}, status_code=422
            )
        raise error

    @app.exception_handler(UnicodeEncodeError)
    async def unencodable(request: Request, error: UnicodeEncodeError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"Text cannot be stored (not valid Unicode): {error.reason}"},
            status_code=422,
        )
