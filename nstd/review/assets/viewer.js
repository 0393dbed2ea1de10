// nstd gallery viewer: full screen, zoom, before/after, keyboard and swipe; filters; and, on a
// static page, a notice once the page is no longer being rewritten. Requests only files of the
// outbox (and, under `nstd web`, the app's own /events and actions). No framework, no build.
"use strict";
(function () {
  const body = document.body;

  // -- a static page that stopped being rewritten (daemon killed) --------------------------
  const refresh = Number(body.dataset.refresh || 0);
  const written = Number(body.dataset.written || 0);
  if (refresh && !body.dataset.live) {
    const age = Date.now() / 1000 - written;
    if (age > 4 * refresh) {
      body.classList.add("stale");
      const state = document.getElementById("state");
      const when = new Date(written * 1000).toLocaleString();
      if (state) state.textContent = "not updated since " + when +
        ": the daemon is stopped or cannot write here; what was running may not be";
    } else {
      body.dataset.reloading = "scheduled";  // said on the page, so that a test can read the decision
      setTimeout(() => location.reload(), refresh * 1000);
    }
  }

  // -- filters ------------------------------------------------------------------------------
  const filters = document.querySelector("form.filters");
  function applyFilters() {
    if (!filters) return;
    const want = Object.fromEntries(new FormData(filters));
    document.querySelectorAll(".card").forEach((card) => {
      const hide = ["rule", "style", "outcome"].some((k) => want[k] && card.dataset[k] !== want[k]);
      card.classList.toggle("hidden-by-filter", hide);
    });
  }
  if (filters) {
    filters.hidden = false;
    filters.addEventListener("change", applyFilters);
  }

  // -- the viewer -----------------------------------------------------------------------------
  const viewer = document.createElement("div");
  viewer.className = "viewer";
  viewer.hidden = true;
  viewer.setAttribute("role", "dialog");
  viewer.setAttribute("aria-label", "painting viewer");
  viewer.innerHTML =
    '<div class="bar"><button data-do="prev" title="previous (\u2190)">\u2190</button>' +
    '<button data-do="next" title="next (\u2192)">\u2192</button><span class="title"></span>' +
    '<span class="compare"><label><input type="checkbox" data-do="compare"> before/after (c)</label>' +
    '<input type="range" min="0" max="100" value="50" aria-label="photo | painting" hidden></span>' +
    '<button data-do="zoomout" title="zoom out (-)">\u2212</button><span class="zoom">100%</span>' +
    '<button data-do="zoomin" title="zoom in (+)">+</button><button data-do="reset" title="fit (0)">fit</button>' +
    '<a class="full" target="_blank" rel="noopener">full size</a><button data-do="close" title="close (Esc)">\u2715</button></div>' +
    '<div class="frame"><div class="stage"><img class="after" alt=""><img class="before" alt="" hidden></div></div>' +
    '<div class="hint">wheel or +/\u2212 to zoom, drag to pan, \u2190 \u2192 or swipe for the next, c to compare with the photo</div>';
  body.appendChild(viewer);
  const frame = viewer.querySelector(".frame"), stage = viewer.querySelector(".stage");
  const after = viewer.querySelector("img.after"), before = viewer.querySelector("img.before");
  const slider = viewer.querySelector("input[type=range]"), compareBox = viewer.querySelector("input[type=checkbox]");
  let items = [], index = -1, scale = 1, tx = 0, ty = 0;

  function heroes() {
    return [...document.querySelectorAll(".card:not(.hidden-by-filter) a.hero")];
  }
  function show(i) {
    items = heroes();
    if (!items.length) return;
    index = (i + items.length) % items.length;
    const a = items[index];
    after.src = a.dataset.view || a.href;
    after.dataset.full = a.href;
    after.alt = a.dataset.title || "";
    viewer.querySelector(".title").textContent = a.dataset.title || "";
    viewer.querySelector("a.full").href = a.href;
    const photo = a.dataset.photo;
    compareBox.disabled = !photo;
    if (photo) before.src = photo; else { before.removeAttribute("src"); compareBox.checked = false; }
    setCompare(compareBox.checked);
    reset();
    viewer.hidden = false;
    viewer.dataset.index = String(index);
  }
  function close() { viewer.hidden = true; index = -1; }
  function apply() {
    stage.style.transform = "translate(" + tx + "px," + ty + "px) scale(" + scale + ")";
    viewer.querySelector(".zoom").textContent = Math.round(scale * 100) + "%";
    viewer.dataset.scale = String(scale);
    // Past 1.5x the viewing copy is too coarse: swap in the full-size file, once.
    if (scale > 1.5 && after.dataset.full && after.src !== after.dataset.full) after.src = after.dataset.full;
  }
  function zoomAt(factor, cx, cy) {
    const r = frame.getBoundingClientRect();
    const x = (cx === undefined ? r.width / 2 : cx - r.left), y = (cy === undefined ? r.height / 2 : cy - r.top);
    const next = Math.min(16, Math.max(1, scale * factor));
    tx = x - (x - tx) * next / scale; ty = y - (y - ty) * next / scale; scale = next;
    if (scale === 1) { tx = 0; ty = 0; }
    apply();
  }
  function reset() { scale = 1; tx = 0; ty = 0; apply(); }
  function setCompare(on) {
    compareBox.checked = on && !compareBox.disabled;
    before.hidden = !compareBox.checked;
    slider.hidden = !compareBox.checked;
    clip();
  }
  function clip() { before.style.clipPath = "inset(0 " + (100 - Number(slider.value)) + "% 0 0)"; }
  slider.addEventListener("input", clip);
  compareBox.addEventListener("change", () => setCompare(compareBox.checked));

  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a.hero");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    show(heroes().indexOf(a));
  });
  viewer.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-do]");
    if (!b) return;
    ({ prev: () => show(index - 1), next: () => show(index + 1), close: close,
       zoomin: () => zoomAt(1.5), zoomout: () => zoomAt(1 / 1.5), reset: reset })[b.dataset.do]();
  });
  document.addEventListener("keydown", (e) => {
    if (viewer.hidden || e.target.matches("input[type=range], select, textarea, input[type=text]")) return;
    const act = { ArrowLeft: () => show(index - 1), ArrowRight: () => show(index + 1), Escape: close,
      "+": () => zoomAt(1.5), "=": () => zoomAt(1.5), "-": () => zoomAt(1 / 1.5), "0": reset,
      c: () => setCompare(!compareBox.checked) }[e.key];
    if (act) { e.preventDefault(); act(); }
  });
  frame.addEventListener("wheel", (e) => { e.preventDefault(); zoomAt(Math.exp(-e.deltaY / 300), e.clientX, e.clientY); },
    { passive: false });
  frame.addEventListener("dblclick", (e) => (scale > 1 ? reset() : zoomAt(2.5, e.clientX, e.clientY)));
  // Drag pans a zoomed picture; at fit size a horizontal swipe goes to the next or previous one.
  let drag = null;
  const pointers = new Map();
  frame.addEventListener("pointerdown", (e) => {
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    frame.setPointerCapture(e.pointerId);
    drag = { x: e.clientX, y: e.clientY, tx: tx, ty: ty, pinch: pointers.size === 2 ? spread() : 0, scale: scale };
  });
  function spread() {
    const [a, b] = [...pointers.values()];
    return Math.hypot(a[0] - b[0], a[1] - b[1]);
  }
  frame.addEventListener("pointermove", (e) => {
    if (!drag) return;
    pointers.set(e.pointerId, [e.clientX, e.clientY]);
    if (pointers.size === 2 && drag.pinch) { zoomAt(drag.scale * spread() / drag.pinch / scale); return; }
    if (scale > 1) { tx = drag.tx + e.clientX - drag.x; ty = drag.ty + e.clientY - drag.y; apply(); }
  });
  function end(e) {
    pointers.delete(e.pointerId);
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (scale === 1 && !drag.pinch && Math.abs(dx) > 60 && Math.abs(dx) > 2 * Math.abs(dy)) show(index + (dx < 0 ? 1 : -1));
    drag = null;
  }
  frame.addEventListener("pointerup", end);
  frame.addEventListener("pointercancel", end);

  // -- live updates and actions under `nstd web` --------------------------------------------
  if (body.dataset.live && window.EventSource) {
    const main = document.getElementById("main");
    const state = document.getElementById("state");
    const events = new EventSource(body.dataset.live);
    events.addEventListener("progress", (e) => {
      for (const r of JSON.parse(e.data)) {
        const card = document.getElementById("run" + r.id);
        if (!card) continue;
        card.querySelector("progress").value = r.percent;
        card.querySelector(".progress-text").textContent = r.text;
        let img = card.querySelector("img.preview");
        if (!img && r.preview) {  // a job that started after the page was drawn: its first preview
          img = document.createElement("img");
          img.className = "preview";
          img.alt = "the painting so far";
          card.prepend(img);
        }
        if (img && r.preview) img.src = r.preview;
      }
    });
    events.addEventListener("changed", async (e) => {
      const data = JSON.parse(e.data);
      if (state) state.textContent = data.state;
      const r = await fetch(location.pathname + "?part=main", { headers: { Accept: "text/html" } });
      if (r.ok) { main.innerHTML = await r.text(); applyFilters(); }
    });
  }
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!body.dataset.live || !form.matches("form[data-async]")) return;
    e.preventDefault();
    const csrf = form.querySelector("input[name=csrf]");
    const r = await fetch(form.action, { method: "POST", body: new FormData(form, e.submitter), headers: { Accept: "application/json" } });
    let answer = { message: r.statusText };
    try { answer = await r.json(); } catch (err) { /* not JSON */ }
    toast(answer.message, answer.undo && csrf ? { action: answer.undo, csrf: csrf.value } : null);
  });
  // A toast; one that offers an undo (a deletion) stays longer and carries its own small form.
  function toast(text, undo) {
    const t = document.createElement("div");
    t.className = "toast";
    t.setAttribute("role", "status");
    t.textContent = text + " ";
    if (undo) {
      const f = document.createElement("form");
      f.className = "inline undo";
      f.method = "post";
      f.action = undo.action;
      f.dataset.async = "";
      const token = document.createElement("input");
      token.type = "hidden"; token.name = "csrf"; token.value = undo.csrf;
      const b = document.createElement("button");
      b.type = "submit"; b.textContent = "undo";
      f.append(token, b);
      f.addEventListener("submit", () => setTimeout(() => t.remove(), 0));
      t.appendChild(f);
    }
    body.appendChild(t);
    setTimeout(() => t.remove(), undo ? 20000 : 4000);
  }
})();
