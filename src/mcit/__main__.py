"""`python -m mcit` runs the command line."""

from mcit.run.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
