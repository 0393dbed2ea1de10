"""The outbox's static gallery: index.html and its pages, thumbnails and previews.

The pages open straight from the folder (file://, a file share): relative links only, no scripts,
no external assets, inline CSS that reflows for a phone. Thumbnails and previews live under
`.nstd/` so that people browsing the outbox see only results, logs and plots. Every file is
written atomically, so a reader never sees half a page.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from urllib.parse import quote


from .humane import duration, first_line
from .jobs import JobState
from .names import shown
from .outbox import atomic_write_bytes, log_path_for
from .thumbs import HIDDEN, hidden_dir, preview_path  # noqa: F401  (the gallery's links point there)
from .store import Job, Store

PAGE_SIZE = 60
REFRESH_SECONDS = 15


# -- HTML ------------------------------------------------------------------------------------

CSS = """
:root{color-scheme:light dark;--bg:#f6f5f2;--card:#fff;--ink:#222;--dim:#666;--bad:#b3261e}
@media (prefers-color-scheme:dark){:root{--bg:#161616;--card:#222;--ink:#eee;--dim:#aaa;--bad:#f2b8b5}}
*{box-sizing:border-box}body{margin:0;font:15px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--ink)}
header,main,footer{max-width:1200px;margin:auto;padding:12px}h1{margin:0 0 4px;font-size:1.4em}
.dim{color:var(--dim)}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px}
article{background:var(--card);border-radius:10px;padding:10px;box-shadow:0 1px 3px #0002}
.trio{display:grid;grid-template-columns:1fr 1fr 2fr;gap:6px;align-items:end}
figure{margin:0}figure img{width:100%;height:auto;border-radius:6px;display:block}
figcaption{font-size:.75em;color:var(--dim);text-align:center}
h2{font-size:1em;margin:8px 0 4px;word-break:break-all}dl{display:grid;grid-template-columns:auto 1fr;
gap:0 10px;margin:4px 0;font-size:.85em}dt{color:var(--dim)}dd{margin:0}
.plot{width:100%;height:auto;margin-top:6px}a{color:inherit}.links a{margin-right:12px}
.bad{color:var(--bad)}progress{width:100%}nav a,nav span{margin-right:8px}
ul.failed{padding-left:18px}ul.failed li{margin:4px 0;word-break:break-word}
"""


def _url(rel: str) -> str:
    return quote(rel)


def _e(value) -> str:
    return html.escape(shown(str(value)), quote=True)


def _versions(job: Job, versions: list[Job], outbox: Path) -> str:
    """Every painting of this photo (`nstd rerun` adds versions), this one marked, each a link."""
    if len(versions) < 2:
        return ""
    links = []
    for n, v in enumerate(versions, 1):
        try:
            rel = Path((v.outputs or {}).get("image", "")).relative_to(outbox).as_posix()
        except ValueError:
            continue
        label = f"{n}: {v.style}, style {v.spec.get('params', {}).get('style_weight')}"
        links.append(f"<b>{_e(label)}</b>" if v.id == job.id else f'<a href="{_url(rel)}">{_e(label)}</a>')
    return f'<p class="links">versions: {" ".join(links)}</p>'


def _result_card(job: Job, outbox: Path, versions: list[Job] = ()) -> str:
    out = job.outputs or {}
    thumbs = out.get("thumbs", {})
    image = Path(out.get("image", ""))
    try:
        image_rel = image.relative_to(outbox).as_posix()
    except ValueError:
        return ""
    log_rel = log_path_for(Path(image_rel)).as_posix()
    plot_rel = out.get("plot") and Path(out["plot"]).relative_to(outbox).as_posix()
    params = job.spec.get("params", {})
    figs = [f'<figure><img src="{_url(thumbs["content"])}" alt="photo" loading="lazy">'
            f"<figcaption>photo</figcaption></figure>" if thumbs.get("content") else "<figure></figure>"]
    style_imgs = "".join(f'<img src="{_url(s)}" alt="style" loading="lazy">' for s in thumbs.get("styles", []))
    figs.append(f"<figure>{style_imgs}<figcaption>style</figcaption></figure>")
    figs.append(f'<figure><a href="{_url(image_rel)}"><img src="{_url(thumbs.get("result", image_rel))}" '
                f'alt="result" loading="lazy"></a><figcaption>result</figcaption></figure>')
    final = out.get("final", {})
    losses = ", ".join(f"{k} {final[k]:.3g}" for k in ("total", "content", "style", "tv") if k in final)
    rows = [("rule", job.rule), ("style", job.style),
            ("size", f"{params.get('size')} px, {params.get('iterations')} it, {params.get('optimizer')}"),
            ("weights", f"content {params.get('content_weight')}, style {params.get('style_weight')}, "
                        f"tv {params.get('tv_weight')}"),
            ("loss", losses or "?"), ("took", f"{duration(out.get('seconds'))} on {out.get('device', '?')}"),
            ("finished", time.strftime("%Y-%m-%d %H:%M", time.localtime(job.finished or 0)))]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    plot = f'<img class="plot" src="{_url(plot_rel)}" alt="loss curve" loading="lazy">' if plot_rel else ""
    return (f'<article id="job{job.id}"><div class="trio">{"".join(figs)}</div>'
            f"<h2>{_e(job.input_relpath)}</h2><dl>{dl}</dl>"
            f'<p class="links"><a href="{_url(image_rel)}">full size</a><a href="{_url(log_rel)}">loss log</a></p>'
            f"{_versions(job, list(versions), outbox)}{plot}</article>")


def _running_card(job: Job, outbox: Path) -> str:
    p = job.progress or {}
    preview = preview_path(outbox, job.id)
    img = (f'<img src="{_url(preview.relative_to(outbox).as_posix())}" alt="preview" style="max-width:100%">'
           if preview.exists() else "")
    pct = p.get("percent", 0)
    eta = p.get("eta_s")
    return (f'<article><h2>{_e(job.input_relpath)} &rarr; {_e(job.style)}</h2>'
            f'<progress max="100" value="{pct}">{pct}%</progress>'
            f'<p>{pct:.0f}% ({p.get("done", 0)}/{p.get("total", "?")}), {p.get("it_per_s", 0):.2f} it/s, '
            f'ETA {duration(eta) if eta is not None else "?"}</p>{img}</article>')


def _page(title: str, body: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")


def page_name(n: int) -> str:
    """index.html holds the newest results; page-1.html the oldest PAGE_SIZE, page-2.html the next..."""
    return "index.html" if n == 0 else f"page-{n}.html"


def write_gallery(store: Store, outbox: Path, full: bool = False, stopped: bool = False) -> list[Path]:
    """Rewrite index.html and write any missing page of older results; returns the pages written.

    Older results sit in pages of PAGE_SIZE in the order they finished, page-1.html the oldest. A
    full page never changes, so a rewrite costs the newest page, not the history; `full` rewrites
    every page (`nstd gallery`). `stopped` says so, with no running jobs and no refresh.
    """
    counts = store.counts()
    archived = counts["done"] // PAGE_SIZE
    newest = store.jobs_in(JobState.DONE, limit=PAGE_SIZE, newest_first=True)
    running = [] if stopped else store.jobs_in(JobState.RUNNING)
    failed_jobs = store.jobs_in(JobState.FAILED, limit=200, newest_first=True)
    failed_inputs = [i for i in store.failed_inputs(200) if not any(j.input_id == i.id for j in failed_jobs)]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    state = f"daemon stopped at {stamp}" if stopped else f"updated {stamp}"
    if store.paused():
        state = "paused: no new job starts until `nstd resume`; " + state
    nav_pages = [0, *range(archived, 0, -1)]

    def header(current: int) -> str:
        nav = "".join(f"<span>{_nav_label(i)}</span>" if i == current
                      else f'<a href="{page_name(i)}">{_nav_label(i)}</a>' for i in nav_pages) if archived else ""
        return (f"<header><h1>nstd outbox</h1><p class=dim>{counts['done']} results, "
                f"{len(failed_jobs) + len(failed_inputs)} failed, {len(running)} running; {state}"
                f"</p><nav>{nav}</nav></header><main>")

    parts = [header(0)]
    if running:
        parts.append('<h2>Running</h2><div class="grid">'
                     + "".join(_running_card(j, outbox) for j in running) + "</div>")
    cards = "".join(_result_card(j, outbox, store.done_jobs_of(j.input_id)) for j in newest)
    parts.append('<div class="grid">' + (cards or "<p>No results yet.</p>") + "</div>")
    if failed_jobs or failed_inputs:
        items = [f"<li><b>{_e(j.input_relpath)}</b> &rarr; {_e(j.style)}: "
                 f'<span class="bad">{_e(first_line(j.error))}</span></li>' for j in failed_jobs]
        items += [f'<li><b>{_e(i.relpath)}</b>: <span class="bad">{_e(i.error)}</span></li>'
                  for i in failed_inputs]
        parts.append('<h2>Failed</h2><p class=dim>The inputs are in the failed folder, each with '
                     f'a .error.json beside it.</p><ul class="failed">{"".join(items)}</ul>')
    parts.append("</main>")
    index = outbox / page_name(0)
    atomic_write_bytes(index, _page("nstd outbox", "".join(parts), refresh=bool(running)).encode())
    written = [index]
    for n in range(1, archived + 1):
        path = outbox / page_name(n)
        if full or not path.exists():
            chunk = store.done_in_order(offset=(n - 1) * PAGE_SIZE, limit=PAGE_SIZE)
            cards = "".join(_result_card(j, outbox, store.done_jobs_of(j.input_id)) for j in chunk)
            body = header(n) + '<div class="grid">' + cards + "</div></main>"
            atomic_write_bytes(path, _page(f"nstd outbox, page {n}", body, refresh=False).encode())
            written.append(path)
    for stale in outbox.glob("page-*.html"):  # fewer results than last time (a reset state file)
        number = stale.stem.removeprefix("page-")
        if not number.isdigit() or int(number) > archived:
            stale.unlink(missing_ok=True)
    return written


def _nav_label(n: int) -> str:
    return "latest" if n == 0 else str(n)
