"""``python -m scaffold``: the same as the ``scaffold`` command."""

from .cli import main

main()
