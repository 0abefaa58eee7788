"""mkdocs hooks for the site (mkdocs.yml: ``hooks``).

Docstrings use Sphinx roles (``:func:`antialias```, ``:class:`~diffrend.io.MultiViewData```),
which read well in ``help()`` but which Markdown leaves as literal text. The rendered API
pages show them as plain code: the role is dropped, and a ``~`` keeps the last component.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|obj|exc|py:\w+):(<code>)(~?)([^<]*)</code>")


def _code(m: re.Match) -> str:
    target = m.group(3).split(".")[-1] if m.group(2) else m.group(3)
    return f"<code>{target}</code>"


def on_page_content(html: str, **kwargs) -> str:
    """Rewrite ``:role:<code>target</code>`` into ``<code>target</code>``."""
    return _ROLE.sub(_code, html)
