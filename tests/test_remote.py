"""The redis backend's small pure parts: the path map of a worker host, a Redis URL in the logs."""

from __future__ import annotations

from nstd.work.remote.broker import redacted
from nstd.work.remote.worker_main import PathMap


def test_a_worker_host_maps_the_daemons_paths_to_its_mounts_and_back():
    paths = PathMap({"/srv/nstd": "/mnt/nstd", "/srv/nstd/outbox": "/data/out/"})
    assert paths.here("/srv/nstd/inbox/a.jpg") == "/mnt/nstd/inbox/a.jpg"
    assert paths.here("/srv/nstd/outbox/r/a__s.png") == "/data/out/r/a__s.png"    # the longest prefix wins
    assert paths.here("/srv/nstdx/a.jpg") == "/srv/nstdx/a.jpg"                    # a prefix is a whole folder
    assert paths.here("/elsewhere/a.jpg") == "/elsewhere/a.jpg"
    assert paths.there("/data/out/r/a__s.png") == "/srv/nstd/outbox/r/a__s.png"
    assert paths.there(paths.here("/srv/nstd/archive/b.png")) == "/srv/nstd/archive/b.png"
    assert PathMap({}).here("/srv/nstd/a") == "/srv/nstd/a"


def test_a_redis_password_never_reaches_the_logs():
    assert redacted("redis://:s3cret@redis.lan:6379/0") == "redis://:***@redis.lan:6379/0"
    assert redacted("redis://user:s3cret@redis.lan/0") == "redis://user:***@redis.lan/0"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_reports_are_read_by_the_fields_both_versions_know_and_garbage_is_a_typed_error():
    from types import SimpleNamespace

    import pytest

    from nstd.work.protocol import Done
    from nstd.work.remote.broker import PROTOCOL, MalformedReport, report_from

    message = lambda *args: SimpleNamespace(args=args)  # noqa: E731 (a stand-in for a Dramatiq message)
    v = {"protocol": PROTOCOL}
    report, extra = report_from(message("done", {"job_id": 3, "outputs": {"image": "x"}, "worker_version": "9", **v}))
    assert report == Done(3, {"image": "x"}) and extra == ["worker_version"]
    for bad in (("done", {"outputs": {}, **v}), ("exploded", {"job_id": 1, **v}),
                ("done", {"job_id": "3", "outputs": {}, **v}),
                ("done",), ("done", ["not", "a", "dict"]), ("done", {"job_id": 3, "outputs": {}}),
                ("done", {"job_id": 3, "outputs": {}, "protocol": PROTOCOL + 1})):
        with pytest.raises(MalformedReport):
            report_from(message(*bad))


def test_a_paint_order_of_another_release_is_refused_by_name():
    import pytest

    from nstd.work.protocol import JobOrder
    from nstd.work.remote.broker import OtherProtocol, order_from, paint_message

    order = JobOrder(id=1, key="k", input="/i/a.png", relpath="a.png", sha256="s", rule="r", style="s",
                     images=({"path": "/s.png", "weight": 1.0},), params={}, output="/o/a.png", outbox="/o")
    assert order_from(paint_message(order).args[0]) == order
    for protocol in (None, 0, 2):
        fields = {**paint_message(order).args[0], "protocol": protocol}
        with pytest.raises(OtherProtocol, match="run one nstd release on the daemon and every worker host"):
            order_from(fields)
