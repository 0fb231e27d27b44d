"""``python -m devconsul`` and the ``devconsul`` console script."""

import sys

from devconsul.cli import main as _main


def main() -> None:
    sys.exit(_main())


if __name__ == "__main__":
    main()
