"""``python -m fedpack``: the same program as the ``fedpack`` command."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
