"""The docs cannot drift from the code: every YAML key and flag has a description, the reference
pages hold them all, the site builds with --strict (broken links and missing pages fail), the
README's links resolve, and the Design page lists the packages of tests/test_layering.py in order."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from test_layering import LAYERS


def test_every_yaml_key_and_every_flag_has_a_description():
    from nstd.reference import undescribed
    assert undescribed() == []


def test_the_reference_holds_every_key_and_every_command():
    from nstd.reference import _commands, commands_reference, config_keys, config_reference
    page = config_reference()
    keys = [path for path, *_ in config_keys()]
    assert {"inbox", "rules[].match", "worker.mixed_precision", "defaults.style_strength", "web.listen"} <= set(keys)
    assert all(f"| `{k}` |" in page for k in keys)
    commands = commands_reference()
    assert all(f"## nstd {name}" in commands for name in _commands())
    assert "`--max-memory-gb`" in commands and "90 %" in commands  # help text as printed, not argparse's %%


def test_the_reference_pages_in_the_checkout_are_the_codes():
    """They read on the code host without a build: `python -m nstd.reference` writes them anew."""
    from nstd.reference import PAGES, with_reference
    for rel, (marker, make) in PAGES.items():
        page = (ROOT / "docs" / rel).read_text(encoding="utf-8")
        assert page == with_reference(page, marker, make), f"docs/{rel} lags the code: run python -m nstd.reference"
        assert "| --- |" in page


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_the_docs_site_builds_strict_with_the_generated_reference(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
    page = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    assert "worker.mixed_precision" in page and "<table>" in page


def test_the_readmes_links_resolve_and_it_stays_a_front_door():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links and [link for link in links if not (ROOT / link).exists()] == []
    assert len(text.splitlines()) <= 160


def test_the_design_page_lists_the_layers_in_their_order():
    rows = re.findall(r"^\| `(nstd/[^`]*)` \|", (ROOT / "docs" / "design.md").read_text(), flags=re.M)
    assert [r.rstrip("/").removesuffix(".py").replace("/", ".") for r in rows] == [name for name, _ in LAYERS]
