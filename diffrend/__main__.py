"""``python -m diffrend``: the ``diffrend`` command (see :mod:`diffrend.cli`)."""

from .cli import main

main(prog_name="diffrend")
