"""The ``riverrun`` command line: run history today, servers and workers later.

Invariants:
- Commands read and write runs only through the ``RunStore`` protocol
  (``riverrun.store.get_store``); nothing here touches tables or builds SQL (from
  ``riverrun.db`` only ``redacted`` is used, to show URLs), so the same commands work
  unchanged once the HTTP store arrives.
- ``main(argv) -> int`` never raises: it returns the exit code, and the console script
  and ``python -m riverrun`` pass it to ``sys.exit``.
- Exit codes: ``0`` success; ``1`` an expected failure (an unknown or ambiguous run id,
  an unreachable database, bad settings); ``2`` a usage error reported by argparse;
  ``130`` interrupted by Ctrl-C.
- An expected failure is one line on stderr, ``Error: <what went wrong>``, never a
  traceback; a database URL in it always has its password hidden.
- Results go to stdout, errors to stderr; output is plain text (no colour, no table
  library) so it can be piped, grepped and copied from.
- Times are shown in the local time zone; ids are shown in full so they can be copied.
- Importing a command module stays cheap: the store, SQLAlchemy and JSON are imported
  when a command runs, not when the parser is built.
"""
