"""``python -m mamori``: the same as the ``mamori`` command."""

from mamori.cli import main

main()
