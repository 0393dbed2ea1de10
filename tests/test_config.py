"""Config loading: the issue's minimal form, richer forms, and problems reported with key paths."""

from __future__ import annotations

import pytest

from conftest import make_style
from nstd.config import load_config
from nstd.core.errors import ConfigError

MINIMAL = """\
inbox: ./inbox
outbox: ./outbox
styles:
  starry: ./styles/starry_night.jpg
rules:
  - match: "**/*"
    style: starry
defaults:
  size: 64
  iterations: 10
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "styles").mkdir()
    make_style().save(tmp_path / "styles" / "starry_night.jpg", "JPEG")
    make_style().save(tmp_path / "styles" / "b.png")
    return tmp_path


def problems(folder, text):
    path = folder / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_minimal_config_resolves_paths_against_its_folder(folder):
    (folder / "c.yaml").write_text(MINIMAL)
    c = load_config(folder / "c.yaml")
    assert c.inbox == folder / "inbox" and c.outbox == folder / "outbox"
    assert c.archive == folder / "archive" and c.failed == folder / "failed"
    assert c.state == folder / ".nstd" / "state.sqlite"
    (job,) = c.rules[0].jobs
    assert job.style == "starry" and job.params.size == 64 and job.params.iterations == 10
    assert job.images[0].path == str(folder / "styles" / "starry_night.jpg")


def test_blends_fan_out_and_parameter_layers(folder):
    (folder / "c.yaml").write_text("""\
inbox: in
outbox: out
styles:
  starry: styles/starry_night.jpg
  blend:
    images: [styles/starry_night.jpg, {path: styles/b.png, weight: 0.25}]
    params: {style_weight: 5, iterations: 7}
rules:
  - match: ["portraits/**", "faces/*.jpg"]
    style: [starry, blend]
    name: people
    params: {iterations: 9, preset: seed}
    output: jpg
  - match: "**/*"
    style: blend
defaults: {size: 48, iterations: 3}
""")
    c = load_config(folder / "c.yaml")
    people, rest = c.rules
    assert people.patterns == ("portraits/**", "faces/*.jpg")
    starry, blend = people.jobs
    assert (starry.rule, starry.output_ext, starry.params.iterations) == ("people", "jpg", 9)
    assert starry.params.optimizer == "adam"  # the preset applies under the overrides
    assert starry.params.size == 48  # defaults still override the preset's size
    assert [r.weight for r in blend.images] == [1.0, 0.25]
    assert rest.jobs[0].params.iterations == 7 and rest.jobs[0].params.style_weight == 5


def test_every_problem_is_reported_with_its_key_path(folder):
    found = problems(folder, """\
inbox: ./inbox
outbx: ./outbox
styles:
  starry: ./styles/starry_night.jpg
  other: {images: [./styles/nope.jpg], params: {size: big}}
rules:
  - match: "**/*"
    style: starry
    params: {iterations: 0, bogus: 1}
watch: {settle_seconds: -1}
""")
    assert "outbox: required key is missing" in found
    assert "outbx: unknown key (did you mean 'outbox'?)" in found
    assert any(p.startswith("styles.other.params.size:") for p in found)
    assert "rules.0.params.bogus: unknown key" in found
    assert any(p.startswith("watch.settle_seconds:") for p in found)


def test_semantic_problems_name_the_key(folder):
    found = problems(folder, MINIMAL.replace("style: starry", "style: stary")
                     .replace("starry_night.jpg", "missing.jpg"))
    assert any(p.startswith("styles.starry: style image not found") for p in found)
    assert "rules.0.style: unknown style 'stary' (did you mean 'starry'?)" in found
    found = problems(folder, MINIMAL.replace("iterations: 10", "iterations: 0"))
    assert found == ["rules.0.params.iterations: must be from 1 to 100000"]


@pytest.mark.parametrize("text, expected", [
    ("inbox: [unclosed\n", "not valid YAML"),
    ("inbox: ./in\n\toutbox: ./out\n", "not valid YAML"),
    ("- just\n- a list\n", "top level must be a mapping"),
    (MINIMAL.replace("size: 64", "size: sixty"), "defaults.size"),
])
def test_broken_yaml_is_one_clear_error(folder, text, expected):
    assert any(expected in p for p in problems(folder, text))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "none.yaml")


def test_config_example_in_the_repository_is_valid(tmp_path):
    import shutil
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "config.example.yaml", tmp_path / "config.yaml")
    (tmp_path / "styles").mkdir()
    for name in ("swirls.jpg", "waves.jpg"):
        make_style().save(tmp_path / "styles" / name, "JPEG")
    c = load_config(tmp_path / "config.yaml")
    assert c.rules and c.inbox == tmp_path / "inbox"


LAYOUT = """\
inbox: ./inbox
outbox: {outbox}
archive: {archive}
failed: ./failed
state: {state}
styles:
  s: {style}
rules:
  - match: "**/*"
    style: s
"""


@pytest.mark.parametrize("outbox, archive, state, style, expected", [
    ("./inbox/out", "./archive", "./state/s.sqlite", "./styles/b.png", "outbox: inside the inbox folder"),
    ("./inbox", "./archive", "./state/s.sqlite", "./styles/b.png", "outbox: is the same folder as inbox"),
    ("./outbox", "./inbox/done", "./state/s.sqlite", "./styles/b.png", "archive: inside the inbox folder"),
    ("./outbox", "./archive", "./outbox/s.sqlite", "./styles/b.png", "state: inside the outbox folder"),
    ("./outbox", "./archive", "./state/s.sqlite", "./inbox/b.png", "styles.s: style image inside the inbox"),
    ("./outbox", "./inbox/../linked", "./state/s.sqlite", "./styles/b.png", "archive: inside the inbox folder"),
])
def test_layouts_that_feed_the_daemon_its_own_files_are_refused(folder, outbox, archive, state, style, expected):
    (folder / "inbox").mkdir()
    (folder / "linked").symlink_to(folder / "inbox" / "sub", target_is_directory=True)  # resolved, not trusted
    make_style().save(folder / "inbox" / "b.png")
    found = problems(folder, LAYOUT.format(outbox=outbox, archive=archive, state=state, style=style))
    assert any(p.startswith(expected) for p in found), found


def test_a_style_image_over_the_pixel_limit_is_refused_by_check(folder):
    from PIL import Image
    Image.new("RGB", (400, 300)).save(folder / "styles" / "huge.png")
    text = MINIMAL.replace("starry_night.jpg", "huge.png") + "worker:\n  max_pixels: 100000\n"
    (found,) = problems(folder, text)
    assert found.startswith("styles.starry: style image unusable: 400x300 is 0.12 megapixels, over the limit of 0.1")


def test_init_image_is_refused_where_no_image_can_be_given(folder):
    (found,) = problems(folder, MINIMAL + "  init: image\n")
    assert found.startswith("rules.0.params.init: 'image' needs an image")


@pytest.mark.parametrize("written, meant", [("on", "on"), ("off", "off"), ("auto", "auto"), ("true", "on"),
                                            ("'off'", "off")])
def test_mixed_precision_takes_yamls_bare_on_and_off(tmp_path, written, meant):
    from conftest import write_config
    config = load_config(write_config(tmp_path, extra=f"worker:\n  mixed_precision: {written}\n"))
    assert config.engine_options.mixed_precision == meant
