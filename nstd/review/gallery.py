"""The outbox's static gallery: index.html and its pages of older results.

The pages open straight from the folder (file://, a file share, a phone): relative links only,
nothing fetched from outside the outbox. The basics need no script: each card links its painting
at full size and opens its details with <details>. A small script inside the outbox
(`.nstd/assets/viewer.js`) adds the viewer (full screen, zoom, before/after, keyboard and swipe),
the filters, and notices a page that stopped being rewritten (a daemon killed without a chance to
say so). Every file is written atomically, so a reader never sees half a page.

The cards are built here, once, for this writer and for the web app (`nstd.web`), which renders
the same templates with other link prefixes and with actions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import jinja2

from nstd.core import confine
from nstd.core.humane import duration, first_line, plural, progress_words
from nstd.core.jobs import JobState, variant_words
from nstd.core.names import shown
from nstd.engine.calibration import lighter, stronger
from nstd.outbox.files import atomic_write_bytes, log_path_for
from nstd.outbox.thumbs import HIDDEN, preview_path
from nstd.outbox.trash import TRASH_DAYS
from nstd.store import Input, Job, Store

PAGE_SIZE = 60
REFRESH_SECONDS = 15
ASSETS = ("gallery.css", "viewer.js", "favicon.svg")
LAYOUT_VERSION = "3"  # part of every page's signature: a new layout rewrites the old pages once


def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("nstd.review", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["shown"] = shown
    env.filters["variant"] = lambda job: variant_words(job.spec)
    return env


def asset_bytes(name: str) -> bytes:
    return resources.files("nstd.review").joinpath("assets", name).read_bytes()


def _url(rel: str) -> str:
    return quote(rel, errors="surrogateescape")


def _rel(path: str, outbox: Path) -> str | None:
    try:
        return Path(path).relative_to(outbox).as_posix()
    except ValueError:
        return None


# -- the cards -------------------------------------------------------------------------------

def result_card(job: Job, outbox: Path, versions: list[Job] = ()) -> dict | None:
    """What a result's card shows; None if its image is not inside the outbox."""
    out = job.outputs or {}
    image = _rel(out.get("image", ""), outbox)
    if image is None:
        return None
    thumbs = out.get("thumbs", {})
    params = job.spec.get("params", {})
    final = out.get("final", {})
    losses = ", ".join(f"{k} {final[k]:.3g}" for k in ("total", "content", "style", "tv") if k in final)
    strength = (out.get("calibration") or {}).get("style_strength")  # None: painted by a fixed weight
    rows = [("rule", job.rule), ("style", job.style),
            ("size", f"{_size(params.get('size'), out)}, {_iterations(params, out)}, {params.get('optimizer')}"),
            ("weights", f"content {params.get('content_weight')}, style {_style_weight(params, out)}, "
                        f"tv {params.get('tv_weight')}"),
            ("loss", losses or "?"), ("took", f"{duration(out.get('seconds'))} on {out.get('device', '?')}"
                                           + (f" in {out['precision']}" if out.get("precision") else "")),
            ("job", str(job.id))]
    rerun = variant_words(job.spec) or None
    if rerun:
        rows.insert(0, ("re-run", rerun.removeprefix("re-run ")))
    plot = out.get("plot") and _rel(out["plot"], outbox)
    version_links = []
    if len(versions) > 1:
        for n, v in enumerate(versions, 1):
            rel = _rel((v.outputs or {}).get("image", ""), outbox)
            if rel is not None:
                label = f"{n}: {v.style}, style {_style_weight(v.spec.get('params', {}), v.outputs or {})}"
                version_links.append((label, _url(rel), v.id == job.id))
    return {
        "id": job.id, "input_id": job.input_id, "title": shown(job.input_relpath), "rule": job.rule,
        "style": job.style, "image": _url(image), "log": _url(log_path_for(Path(image)).as_posix()),
        "view": _url(thumbs.get("result_view") or image),
        "photo": _url(thumbs["content_view"]) if thumbs.get("content_view") else None,
        "photo_thumb": _url(thumbs["content"]) if thumbs.get("content") else None,
        "style_thumbs": [_url(s) for s in thumbs.get("styles", [])],
        "plot": _url(plot) if plot and (outbox / plot).is_file() else None,
        "rows": rows, "versions": version_links, "rerun": rerun,
        "lighter": lighter(strength), "stronger": stronger(strength),
        "finished": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.finished or 0)),
        "params": params,
    }


def failure_card(job: Job | None = None, inp: Input | None = None) -> dict:
    if job is not None:
        return {"anchor": f"job{job.id}", "id": job.id, "job_id": job.id, "input_id": job.input_id,
                "title": shown(job.input_relpath), "rule": job.rule, "style": job.style,
                "error": shown(first_line(job.error)), "stage": f"job {job.id}, {plural(job.attempts, 'attempt')}"}
    return {"anchor": f"input{inp.id}", "id": None, "job_id": None, "input_id": inp.id, "title": shown(inp.relpath),
            "rule": "", "style": "", "error": shown(inp.error or "?"), "stage": INPUT_STAGES.get(inp.state, inp.state)}


INPUT_STAGES = {"refused": "refused at intake (refused)", "failed": "failed",
                "stuck": "painted, but stuck in the inbox"}


def running_card(job: Job, outbox: Path) -> dict:
    p = job.progress or {}
    preview = preview_path(outbox, job.id)
    pct = float(p.get("percent", 0))
    text = progress_words(p) if p else "starting"
    if p.get("host"):
        text += f", on {p['host']}"
    return {"id": job.id, "title": shown(job.input_relpath), "rule": job.rule, "style": job.style,
            "percent": round(pct), "text": text, "priority": job.priority, "variant": variant_words(job.spec),
            "preview": _url(preview.relative_to(outbox).as_posix()) if preview.exists() else None}


def deleted_card(job: Job) -> dict:
    return {"id": job.id, "title": shown(job.input_relpath), "style": job.style, "rule": job.rule,
            "deleted": time.strftime("%Y-%m-%d %H:%M", time.localtime(job.updated or 0))}


@dataclass
class Overview:
    """The index page's facts, read from the store once."""
    counts: dict
    results: list[dict]
    running: list[dict]
    failures: list[dict]
    paused: dict | None
    rules: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)

    def state_line(self, stopped: bool) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        state = f"daemon stopped at {stamp}" if stopped else f"updated {stamp}"
        if self.paused:
            state = "paused: no new job starts until `nstd resume`; " + state
        return (f"{plural(self.counts['done'], 'result')}, {len(self.failures)} failed, {len(self.running)} running; "
                f"{state}")


def overview(store: Store, outbox: Path, stopped: bool = False) -> Overview:
    newest = store.jobs_in(JobState.DONE, limit=PAGE_SIZE, newest_first=True)
    running = [] if stopped else store.jobs_in(JobState.RUNNING)
    failed_jobs = store.jobs_in(JobState.FAILED, limit=200, newest_first=True)
    failed_inputs = [i for i in store.failed_inputs(200) if not any(j.input_id == i.id for j in failed_jobs)]
    results = [c for c in (result_card(j, outbox, store.done_jobs_of(j.input_id)) for j in newest) if c]
    failures = [failure_card(job=j) for j in failed_jobs] + [failure_card(inp=i) for i in failed_inputs]
    shown_jobs = results + [running_card(j, outbox) for j in running] + failures
    return Overview(store.counts(), results, [running_card(j, outbox) for j in running], failures,
                    store.paused(), sorted({c["rule"] for c in shown_jobs if c["rule"]}),
                    sorted({c["style"] for c in shown_jobs if c["style"]}))


# -- the static pages ------------------------------------------------------------------------

def page_name(n: int) -> str:
    """index.html holds the newest results; page-1.html the oldest PAGE_SIZE, page-2.html the next..."""
    return "index.html" if n == 0 else f"page-{n}.html"


def _nav(current: int, archived: int) -> list[tuple[str, str | None]]:
    pages = [0, *range(archived, 0, -1)] if archived else []
    return [("latest" if n == 0 else str(n), None if n == current else page_name(n)) for n in pages]


def write_gallery(store: Store, outbox: Path, full: bool = False, stopped: bool = False) -> list[Path]:
    """Rewrite index.html, and every page of older results whose contents changed; returns the pages written.

    Older results sit in pages of PAGE_SIZE in the order they finished, page-1.html the oldest.
    A page is rewritten only when its signature (its jobs, their versions, its neighbours, the
    layout) changed, so a rewrite costs the newest page, not the history, and a deleted result's
    page is still rewritten. `full` rewrites every page (`nstd gallery`). `stopped` says so, with
    no running jobs and no refresh.
    """
    env = templates()
    _write_assets(outbox)
    view = overview(store, outbox, stopped)
    done_ids = store.done_ids_in_order()
    archived = len(done_ids) // PAGE_SIZE
    common = {"base": "", "assets": f"{HIDDEN}/assets/", "live": None, "written": int(time.time()),
              "result_actions": None, "failure_actions": None, "deleted_actions": None, "queue": [],
              "queue_actions": None, "trash": [], "trash_days": TRASH_DAYS,
              "not_taken": store.arriving().get("not_taken") if not stopped else None}
    index = outbox / page_name(0)
    html = env.get_template("gallery.html.j2").render(
        **common, title="nstd outbox", heading="nstd outbox", state=view.state_line(stopped),
        nav=_nav(0, archived), refresh=REFRESH_SECONDS if view.running else None, rules=view.rules,
        styles=view.styles, running=view.running, results=view.results, failures=view.failures)
    atomic_write_bytes(index, html.encode())
    written = [index]
    signatures_file = outbox / HIDDEN / "pages.json"
    try:
        signatures = {} if full else json.loads(signatures_file.read_text())
    except (OSError, ValueError):
        signatures = {}
    versions = store.done_versions()
    for n in range(1, archived + 1):
        ids = done_ids[(n - 1) * PAGE_SIZE:n * PAGE_SIZE]
        signature = hashlib.sha256(json.dumps([LAYOUT_VERSION, n == archived, ids,
                                               [versions.get(i) for i in ids]]).encode()).hexdigest()
        path = outbox / page_name(n)
        if signatures.get(str(n)) == signature and path.exists():
            continue
        jobs = [store.job(i) for i in ids]
        results = [c for c in (result_card(j, outbox, store.done_jobs_of(j.input_id)) for j in jobs) if c]
        html = env.get_template("gallery.html.j2").render(
            **common, title=f"nstd outbox, page {n}", heading=f"nstd outbox: older results, page {n}",
            state=f"results {(n - 1) * PAGE_SIZE + 1} to {n * PAGE_SIZE} in the order they finished",
            nav=_nav(n, archived), refresh=None, rules=sorted({c["rule"] for c in results}),
            styles=sorted({c["style"] for c in results}), running=[], results=results, failures=[])
        atomic_write_bytes(path, html.encode())
        signatures[str(n)] = signature
        written.append(path)
    for stale in outbox.glob("page-*.html"):  # fewer results than last time (deleted, a reset state file)
        number = stale.stem.removeprefix("page-")
        if not number.isdigit() or int(number) > archived:
            confine.unlink(stale, missing_ok=True)
            signatures.pop(number, None)
    atomic_write_bytes(signatures_file, json.dumps(signatures).encode())
    return written


def _write_assets(outbox: Path) -> None:
    folder = outbox / HIDDEN / "assets"
    for name in ASSETS:
        data = asset_bytes(name)
        target = folder / name
        try:
            if target.read_bytes() == data:
                continue
        except OSError:
            pass
        atomic_write_bytes(target, data)


def _size(size, outputs: dict) -> str:
    """`size: original` shown as what it became."""
    if isinstance(size, int):
        return f"{size} px"
    painted = outputs.get("output_size")
    return "the photo's own size" + (f" ({painted[0]}x{painted[1]})" if painted else "")


def _iterations(params: dict, outputs: dict) -> str:
    """What ran at each scale ('100+50+50 it'), which a budget decides; older results: what was asked."""
    ran = outputs.get("iterations")
    if not ran:
        return f"{params.get('iterations')} it"
    budget = params.get("budget_seconds")
    return "+".join(map(str, ran)) + " it" + (f" in a {budget:g} s budget" if budget else "")


def _style_weight(params: dict, outputs: dict) -> str:
    """The style weight painted with: with a strength, the weight its search chose."""
    chosen = outputs.get("calibration")
    if chosen:
        return f"{chosen['style_weight']:.3g} (strength {chosen['style_strength']:g})"
    return str(params.get("style_weight"))
