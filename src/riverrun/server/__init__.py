"""Server: the REST API (FastAPI under ``/api``) over the run history, and its page at ``/``.

Invariants:
- Nothing outside ``server/`` and the ``riverrun server`` command imports this package;
  ``import riverrun`` and a flow run never load FastAPI, uvicorn or Starlette (a test in
  ``tests/test_import.py`` checks it).
- The server keeps no state of its own: every write is committed in the database before
  it answers, so any number of server processes over one PostgreSQL database serve one
  history, and a killed server loses nothing it acknowledged.
- Writes are idempotent under client-made ids (run ids, state and log event ids): a
  client that retries after a lost answer, or delivers a spool twice, records nothing
  twice.
- A state proposed through ``set_state`` goes through ``riverrun.orchestration`` — the
  rules the engine applies before recording locally — inside the transaction that
  writes it: an illegal move is answered 409 with the reason, and nothing is written.
  The batch endpoint records states the client's engine has already checked.
- Every route but ``/api/health`` requires ``RIVERRUN_SERVER_API_AUTH_STRING`` when it
  is set; the string is never logged. Bodies over ``MAX_BODY_BYTES`` are refused (413),
  and every field has a length limit (``schemas.py``).
"""

from riverrun.server.app import create_app

__all__ = ["create_app"]
