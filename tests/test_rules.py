"""Rule matching is pure: a relative path in, the jobs of the first matching rule out."""

from __future__ import annotations

import pytest

from conftest import make_style
from nstd.config import load_config
from nstd.intake.rules import is_transient, targets


@pytest.fixture
def config(tmp_path):
    (tmp_path / "styles").mkdir()
    for n in ("a", "b"):
        make_style().save(tmp_path / "styles" / f"{n}.png")
    (tmp_path / "c.yaml").write_text("""\
inbox: in
outbox: out
styles: {a: styles/a.png, b: styles/b.png}
ignore: ["**/drafts/**"]
rules:
  - {match: "portraits/*", style: [a, b]}
  - {match: "**/*.png", style: b}
  - {match: "**/*", style: a}
""")
    return load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("path, styles", [
    ("portraits/me.jpg", ["a", "b"]),       # fan-out: one job per style
    ("portraits/deeper/me.jpg", ["a"]),     # * does not cross folders
    ("x.png", ["b"]),                       # **/ matches the top level too
    ("deep/er/x.PNG", ["b"]),               # extension case does not matter
    ("x.jpg", ["a"]),
    ("trip/drafts/x.jpg", []),              # ignored
])
def test_first_match_wins(config, path, styles):
    assert [j.style for j in targets(config, path)] == styles


@pytest.mark.parametrize("path", [".hidden.jpg", "a/.x/b.jpg", "b.jpg.part", "c.tmp", "d.jpg.crdownload",
                                  "~lock.jpg", "e.jpg~", ".syncthing.f.jpg.tmp", "g.jpg.filepart"])
def test_transient_names(path):
    assert is_transient(path)


@pytest.mark.parametrize("path", ["photo.jpg", "a/b/photo 1.png", "ünïcode.jpg"])
def test_ordinary_names_are_not_transient(path):
    assert not is_transient(path)


def test_rules_that_can_never_match_or_match_nothing_now_are_warned_about(tmp_path):
    (tmp_path / "styles").mkdir()
    make_style().save(tmp_path / "styles" / "a.png")
    (tmp_path / "c.yaml").write_text("""\
inbox: in
outbox: out
styles: {a: styles/a.png}
rules:
  - {match: "portraits/*", style: a}
  - {match: "**/*", style: a}
  - {match: "late/*", style: a}
""")
    from nstd.intake.rules import rule_warnings
    config = load_config(tmp_path / "c.yaml")
    assert rule_warnings(config, ["x.jpg"]) == [
        "rules.0: matches none of the 1 files now in the inbox (portraits/*)",
        "rules.2: never used: rules.1 before it matches every path",
    ]
    assert rule_warnings(config, ["portraits/me.jpg"]) == ["rules.2: never used: rules.1 before it matches every path"]
