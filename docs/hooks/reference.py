"""MkDocs hook: the reference pages' tables, generated from the code at build time (nstd.reference)."""

from __future__ import annotations

MARKERS = {"<!-- reference: config -->": "config_reference", "<!-- reference: commands -->": "commands_reference"}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, name in MARKERS.items():
        if marker in markdown:
            import nstd.reference
            markdown = markdown.replace(marker, getattr(nstd.reference, name)())
    return markdown
