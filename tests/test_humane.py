from nstd.core.humane import duration


def test_durations_read_the_same_everywhere():
    assert [duration(s) for s in (None, 4.25, 59.9, 61, 3599, 3600, 7500)] == [
        "?", "4.2 s", "59.9 s", "1m01s", "59m59s", "1h00m", "2h05m"]
