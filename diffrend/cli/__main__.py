"""``python -m diffrend.cli``: the ``diffrend`` command."""

from . import main

main()
