"""Result names that fit every file system's 255 bytes, whatever the photo's script (issue 32 item 5)."""

from __future__ import annotations

from nstd.outbox.files import output_path


def test_a_long_name_in_a_wide_script_gets_a_result_name_that_fits_with_everything_beside_it(tmp_path):
    out = output_path(tmp_path, "rule", "写" * 80 + ".png", "impressionism", "png", "key")
    assert len(out.with_suffix(".loss.png").name.encode()) <= 255 and out.name.endswith("__impressionism.png")
    other = output_path(tmp_path, "rule", "写" * 79 + "真.png", "impressionism", "png", "key")
    assert other != out  # cut to the same bytes, told apart by the hash of the whole stem
    assert output_path(tmp_path, "rule", "a.png", "s", "png", "key").name == "a__s.png"
