"""``python -m riverrun``: the ``riverrun`` command line."""

from riverrun.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
