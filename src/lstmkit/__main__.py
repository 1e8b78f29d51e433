"""``python -m lstmkit``: the same command line as the ``lstmkit`` script."""

from lstmkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
