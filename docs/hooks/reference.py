"""MkDocs hook: the reference pages' tables made anew from the code at build time (nstd.reference),
so the site is the code's even where the committed pages lag; tests/test_docs.py keeps those current
for readers of a plain checkout."""

from __future__ import annotations


def on_page_markdown(markdown: str, page, config, files) -> str:
    import nstd.reference

    for marker, make in nstd.reference.PAGES.values():
        markdown = nstd.reference.with_reference(markdown, marker, make)
    return markdown
