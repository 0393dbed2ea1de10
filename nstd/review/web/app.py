"""The web app: the gallery live, the queue, and actions, on Starlette.

Pages are the static gallery's templates rendered with links under /o/ (the outbox) and with the
action forms. Every store access runs in a worker thread under one lock (SQLite connections are
not shared between threads otherwise). Actions call the functions the `nstd` commands call.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from nstd.config import Config
from nstd.core.errors import NstdError
from nstd.core.jobs import JobState
from nstd.outbox.thumbs import HIDDEN
from nstd.outbox.trash import TRASH_DAYS, in_trash
from nstd.review.gallery import ASSETS, asset_bytes, deleted_card, overview, running_card, templates
from nstd.store import Store

from . import auth
from .events import EventHub
from .files import NotServed, chunks, etag, media_type, open_under
from .uploads import Upload, UploadRefused, clean_name, folders, remove_stale_temps, unpaintable

MAX_BODY = 64 * 1024  # forms only: a bigger body is refused before it is read
SECURITY_HEADERS = {
    # Only our own files, no inline script or style, no framing, forms post only to us.
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class WebApp:
    """The state behind the routes: config, one store connection, sessions, templates."""

    def __init__(self, config: Config, store: Store | None = None):
        self.config = config
        self.outbox = config.outbox
        self.store = store or Store(config.state, readonly=True, shared=True)
        self.lock = threading.Lock()
        self.sessions = auth.Sessions()
        self.logins = auth.LoginGuard()
        self.hub = EventHub(self)
        self.env = templates()
        self.log = structlog.get_logger("nstd.web")

    async def read(self, fn: Callable):
        """Run fn(store) in a thread, one at a time, on the daemon's current state file."""
        def locked():
            with self.lock:
                self._follow_state_file()
                return fn(self.store)
        return await run_in_threadpool(locked)

    def _follow_state_file(self) -> None:
        """A state file replaced under the web app (rebuilt, restored from a backup) is opened anew;
        one that cannot be opened now refuses what was asked, rather than answer from the old one."""
        if not self.store.replaced():
            return
        try:
            fresh = Store(self.config.state, readonly=True, shared=True)
        except NstdError as e:
            raise Refused(503, f"the state file is being replaced ({e.cause}); try again in a moment") from None
        self.store.close()
        self.store = fresh
        self.log.info("the state file was replaced: opened anew", state=str(self.config.state))

    # -- who is asking ----------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        return self.config.web.password_hash is not None

    def session(self, request: Request):
        return self.sessions.get(request.cookies.get(auth.COOKIE))

    async def authorised(self, request: Request) -> dict:
        """The form of an action, once its session and CSRF token are right; else Refused."""
        self.permit(request)
        form = dict(await request.form())
        self.check_session(request, form.get("csrf"))
        return form

    def permit(self, request: Request) -> None:
        if not self.writable:
            raise Refused(403, "read-only: set web.password_hash (nstd web-password) to allow actions")
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            raise Refused(403, "cross-site request refused")

    def check_session(self, request: Request, csrf) -> None:
        session = self.session(request)
        if session is None:
            raise Refused(401, "log in first")
        if not auth.csrf_ok(session, csrf):
            raise Refused(403, "stale or missing form token: reload the page")

    # -- pages ------------------------------------------------------------------------------
    def page_vars(self, store: Store, request: Request) -> dict:
        view = overview(store, self.outbox)
        session = self.session(request)
        queue = store.queue(50)
        values = {
            "base": "/o/", "assets": "/assets/", "live": "/events", "written": 0, "refresh": None,
            "title": "nstd", "heading": "nstd", "state": view.state_line(stopped=False), "nav": [],
            "rules": view.rules, "styles": view.styles, "running": view.running, "results": view.results,
            "failures": view.failures, "queue": queue, "paused": view.paused,
            "can_act": self.writable and session is not None, "writable": self.writable,
            "csrf": session.csrf if session else "", "style_names": list(self.config.style_images),
            "trash_days": TRASH_DAYS,
            "not_taken": store.arriving().get("not_taken") if store.daemon_running() else None,
        }
        values["upload_folders"] = folders(self.config) if values["can_act"] else []
        values["trash"] = [deleted_card(j) for j in store.deleted_jobs(list(in_trash(self.outbox)))] \
            if values["can_act"] else []
        forms = self.env.get_template("actions.html.j2").make_module(values) if values["can_act"] else None
        values.update(result_actions=forms and forms.result, failure_actions=forms and forms.failure,
                      deleted_actions=forms and forms.deleted, queue_actions=forms and forms.queued)
        return values

    async def index(self, request: Request) -> Response:
        values = await self.read(lambda store: self.page_vars(store, request))
        if request.query_params.get("part") == "main":  # the live page swaps this in on a change
            gallery = self.env.get_template("gallery.html.j2")
            return HTMLResponse("".join(gallery.blocks["main"](gallery.new_context(values))))
        return HTMLResponse(self.env.get_template("web.html.j2").render(**values))

    async def login_page(self, request: Request) -> Response:
        return HTMLResponse(self.env.get_template("login.html.j2").render(
            assets="/assets/", writable=self.writable, error=request.query_params.get("error")))

    async def login(self, request: Request) -> Response:
        if not self.writable:
            return RedirectResponse("/login", 303)
        form = await request.form()
        client = request.client.host if request.client else "unknown"
        wait = self.logins.wait(client)
        if wait > 0:
            self.log.warning("web login not tried: too many wrong passwords", client=client, wait_s=round(wait))
            return HTMLResponse(self.env.get_template("login.html.j2").render(
                assets="/assets/", writable=self.writable,
                error=f"too many wrong passwords: try again in {wait:.0f} s"),
                status_code=429, headers={"Retry-After": str(int(wait) + 1)})
        ok = await run_in_threadpool(auth.verify_password, str(form.get("password", "")),
                                     self.config.web.password_hash)
        if not ok:
            self.logins.failed(client)
            self.log.warning("web login refused", client=client)
            return RedirectResponse("/login?error=wrong+password", 303)
        self.logins.succeeded(client)
        token, _ = self.sessions.start()
        response = RedirectResponse("/", 303)
        response.set_cookie(auth.COOKIE, token, max_age=auth.SESSION_SECONDS, httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        await self.authorised(request)
        self.sessions.end(request.cookies.get(auth.COOKIE))
        response = RedirectResponse("/", 303)
        response.delete_cookie(auth.COOKIE)
        return response

    # -- files ------------------------------------------------------------------------------
    async def outbox_file(self, request: Request) -> Response:
        rel = request.path_params["path"]
        try:
            if rel.startswith(f"{HIDDEN}/trash/"):  # deleted: brought back by a restore, never served from there
                raise NotServed(f"{rel!r}: in the trash")
            fd, st = open_under(self.outbox, rel)
        except NotServed as e:
            self.log.info("file not served", reason=str(e))
            return Response("not found", 404, media_type="text/plain")
        tag = etag(st)
        headers = {"ETag": tag, "Cache-Control": "no-cache", "Content-Length": str(st.st_size)}
        if request.headers.get("if-none-match") == tag:
            os.close(fd)
            return Response(status_code=304, headers={"ETag": tag})
        return StreamingResponse(chunks(fd), media_type=media_type(rel), headers=headers)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in (*ASSETS, "upload.js"):
            return Response("not found", 404, media_type="text/plain")
        return Response(asset_bytes(name), media_type=media_type(name), headers={"Cache-Control": "no-cache"})

    async def upload(self, request: Request) -> Response:
        """One photo as the request's body (the page sends each file on its own, with progress)."""
        folder = request.query_params.get("folder", "")
        try:
            self.permit(request)
            self.check_session(request, request.headers.get("x-csrf-token"))
            name = clean_name(request.query_params.get("name", ""))
            if folder not in {f["folder"] for f in await run_in_threadpool(folders, self.config)}:
                raise UploadRefused(folder or "inbox", "not a folder photos can be uploaded to")
            refusal = unpaintable(self.config, f"{folder}/{name}" if folder else name)
            if refusal:  # confirmed, it would wait in the inbox for ever: say so now instead
                raise UploadRefused(name, refusal, 422)
            max_bytes = int(self.config.watch.max_file_mb * 10**6)
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise UploadRefused(name, f"the file is larger than watch.max_file_mb ({max_bytes / 1e6:g} MB)", 413)
            final = await self._receive(request, folder, name, max_bytes)
        except Refused as e:
            return _respond(request, e.message, e.status)
        except UploadRefused as e:
            self.log.warning("upload refused", folder=folder, error=str(e), status=e.status)
            return _respond(request, str(e), e.status)
        except ClientDisconnect:
            self.log.warning("upload cut off; nothing kept", folder=folder)
            return Response("cut off", 400, media_type="text/plain")
        rel = f"{folder}/{final}" if folder else final
        self.log.info("photo uploaded", input=rel, client=request.client.host if request.client else None)
        return JSONResponse({"ok": True, "name": rel,
                             "message": f"{rel}: in the inbox; it is painted when its turn comes"})

    async def _receive(self, request: Request, folder: str, name: str, max_bytes: int) -> str:
        upload = await run_in_threadpool(Upload, self.config.inbox, folder, max_bytes)
        try:
            async for chunk in request.stream():
                if chunk:
                    await run_in_threadpool(upload.write, chunk)
            return await run_in_threadpool(upload.finish, name)
        except BaseException:
            upload.discard()
            raise
        finally:
            upload.close()

    async def events(self, request: Request) -> Response:
        return self.hub.stream(request)

    def progress_now(self, store: Store) -> list[dict]:
        cards = []
        for job in store.jobs_in(JobState.RUNNING):
            card = running_card(job, self.outbox)
            if card["preview"]:
                preview = self.outbox / ".nstd" / "previews" / f"job{job.id}.jpg"
                try:
                    card["preview"] = f"/o/{card['preview']}?t={preview.stat().st_mtime_ns}"
                except OSError:
                    card["preview"] = None
            cards.append(card)
        return cards


def _respond(request: Request, message: str, status: int = 200) -> Response:
    """JSON for the page's script, a redirect back for a plain form."""
    if "application/json" in request.headers.get("accept", ""):
        undo = getattr(message, "undo", None)
        return JSONResponse({"ok": status < 400, "message": str(message), **({"undo": undo} if undo else {})}, status)
    if status >= 400:
        return Response(message, status, media_type="text/plain")
    return RedirectResponse("/", 303)


def _action(app: WebApp, act: Callable[[Store, dict, dict], str]):
    """A POST route: check the session and CSRF token, run act(store, form, path params) in a thread."""
    async def route(request: Request) -> Response:
        try:
            form = await app.authorised(request)
            message = await app.read(lambda store: act(store, form, request.path_params))
        except Refused as e:
            return _respond(request, e.message, e.status)
        except NstdError as e:
            return _respond(request, str(e), 400)
        except (ValueError, KeyError, OverflowError) as e:  # a number too large for SQLite included
            return _respond(request, f"bad form: {e}", 400)
        app.log.info("web action", path=request.url.path, result=message)
        return _respond(request, message)
    return route


def create_app(config: Config, store: Store | None = None) -> Starlette:
    from .actions import ACTIONS

    app = WebApp(config, store)
    for path in remove_stale_temps(config.inbox):
        app.log.info("removed an upload cut off by the last stop", path=path)
    host = config.web.listen.rpartition(":")[0].strip("[]")
    hosts = ["localhost", "127.0.0.1", "[::1]", "::1", *config.web.allowed_hosts]
    if host not in ("0.0.0.0", "::", ""):
        hosts.append(host)
    routes = [
        Route("/", app.index),
        Route("/login", app.login_page, methods=["GET"]),
        Route("/login", app.login, methods=["POST"]),
        Route("/logout", app.logout, methods=["POST"]),
        Route("/events", app.events),
        Route("/assets/{name}", app.asset),
        Route("/o/{path:path}", app.outbox_file, methods=["GET", "HEAD"]),
        # The app's 64 KiB body limit is for forms; an upload is bounded by watch.max_file_mb as it streams.
        Route("/upload", app.upload, methods=["POST"], max_body_size=2**62),
        *[Route(path, _action(app, act), methods=["POST"]) for path, act in ACTIONS(app).items()],
    ]

    inner = Starlette(routes=routes, max_body_size=MAX_BODY,
                      middleware=[Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
                      exception_handlers={Refused: lambda request, e: _respond(request, e.message, e.status)})
    inner.state.web = app
    return inner


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (raw ASGI: streaming responses included)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_with(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            await send(message)
        await self.app(scope, receive, send_with if scope["type"] == "http" else send)


def serve(config: Config) -> None:
    import signal

    import uvicorn

    from nstd.config import load_config
    from nstd.core import logs
    logs.route_stdlib()
    app = create_app(config)
    web: WebApp = app.state.web

    def reload(_signum, _frame) -> None:
        """SIGHUP (systemctl reload nstd-web): a new password hash applies; other keys need a restart."""
        try:
            new = load_config(config.path)
        except NstdError as e:
            web.log.error("config reload refused; keeping the running config", error=str(e))
            return
        if new.web.password_hash != web.config.web.password_hash:
            web.sessions.live.clear()  # sessions of the old password end with it
        web.config = new
        web.log.info("config reloaded: the web password and styles apply now; listen and folders need a restart")

    signal.signal(signal.SIGHUP, reload)
    host, _, port = config.web.listen.rpartition(":")
    uvicorn.run(app, host=host.strip("[]"), port=int(port), log_config=None,
                access_log=False, proxy_headers=False, server_header=False)


__all__ = ["create_app", "serve", "WebApp"]
