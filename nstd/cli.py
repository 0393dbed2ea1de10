"""The `nstd` command. The only module that turns errors into exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from nstd import __version__
from nstd.core import logs
from nstd.core.errors import ConfigError, NstdError, UsageError, WorkerStartError
from nstd.core.jobs import PRIORITY_LIMIT
from nstd.core.paramflags import add_param_flags, number_type, params_from_args
from nstd.core.humane import plural
from nstd.engine.errors import DeviceError, EngineError, ParameterError, WeightsError
from nstd.outbox.trash import TRASH_DAYS


def _stylize(args) -> int:
    from nstd.stylize import StyleArg, stylize

    try:
        params, options = params_from_args(args)
    except ParameterError as e:  # a flag out of range: the person's to fix, like any usage error
        raise UsageError("nstd stylize", str(e)) from None
    image, log, result = stylize(args.content, [StyleArg.parse(s) for s in args.style], args.output,
                                 params, options, init_image=args.init_image)
    t = result.info["timings"]
    print(f"wrote {image}\nloss log {log}\n"
          f"final loss {result.final['total']:.4g} in {t['total_seconds']:.1f} s: {t['iterations']} iterations "
          f"over {plural(len(result.info['schedule']), 'scale')}, {t['seconds_per_iteration'] * 1000:.0f} ms/iteration "
          f"at the output size on {result.info['device']}")
    return 0


def _check(args) -> int:
    from nstd.config import load_config
    from nstd.intake.rules import rule_warnings
    from nstd.intake.walker import FILE, walk

    config = load_config(args.config)
    files = [e.rel for e in walk(config.inbox) if e.kind == FILE] if config.inbox.is_dir() else []
    for warning in rule_warnings(config, files):
        print(f"warning: {warning}", file=sys.stderr)
    if config.notify.urls:
        import apprise
        bad = [f"notify.urls.{i}: apprise does not understand {url.partition('://')[0]}:// URLs like this one"
               for i, url in enumerate(config.notify.urls) if not apprise.Apprise().add(url)]
        if bad:
            raise ConfigError(str(config.path), bad)
    if config.metrics.listen:
        trouble = _port_taken(config.metrics.listen)
        if trouble:
            print(f"warning: metrics.listen: cannot listen on {config.metrics.listen} now ({trouble}); the daemon "
                  "paints without metrics and tries again every minute", file=sys.stderr)
    if config.worker.backend == "redis":
        from nstd.work.remote.broker import ping
        trouble = ping(config.worker.redis_url)
        if trouble:
            print(f"warning: worker.redis_url: Redis does not answer ({trouble}); the daemon will take inputs "
                  "and dispatch once it does", file=sys.stderr)
    jobs = sum(len(r.jobs) for r in config.rules)
    print(f"{config.path}: OK ({len(config.styles)} styles, {len(config.rules)} rules, {jobs} rule-style "
          f"pairs)\n  inbox {config.inbox}\n  outbox {config.outbox}\n  archive {config.archive}\n"
          f"  failed {config.failed}\n  state {config.state}")
    return 0


def _port_taken(listen: str) -> str | None:
    import socket

    host, _, port = listen.rpartition(":")
    try:
        with socket.create_server((host.strip("[]") or "127.0.0.1", int(port))):
            return None
    except OSError as e:
        return e.strerror or str(e)


def _run(args) -> int:
    from nstd.daemon import Daemon

    return Daemon(args.config, until_idle=args.until_idle, log_json=args.log_json).run()


def _status(args) -> int:
    from nstd.config import load_config
    from nstd.review.status import report, report_json

    config = load_config(args.config, check_images=False)  # the queue's state, whatever a style image is
    print(report_json(config) if args.json else report(config))
    return 0


def _backup(args) -> int:
    from nstd.config import load_config
    from nstd.store.backup import backup_state

    config = load_config(args.config, check_images=False)
    copy, jobs = backup_state(config.state, args.dest)
    print(f"backed up {config.state} to {copy} ({plural(jobs, 'job')}); restore: stop the daemon, put the copy "
          f"at {config.state} (removing any -wal and -shm files beside it), start it")
    return 0


def _history(args) -> int:
    from nstd.config import load_config
    from nstd.review.history import history, render, render_json

    h = history(load_config(args.config, check_images=False), args.state, args.rule, args.style, args.photo, args.since,
                args.page, args.per_page)
    print(render_json(h) if args.json else render(h))
    return 0


def _reload(args) -> int:
    from nstd.config import load_config
    from nstd.ops.reload import reload_daemon

    config = load_config(args.config)  # a bad file is refused here, before the daemon is disturbed
    reload_daemon(config, args.pid)
    print(f"reloaded: the daemon applies {config.path} wholly")
    return 0


def _with_store(args, act) -> int:
    from nstd.config import load_config
    from nstd.store import Store

    store = Store(load_config(args.config, check_images=False).state, readonly=True)
    try:
        return act(store)
    finally:
        store.close()


def _pause(args) -> int:
    def act(store):
        store.pause(args.why)
        print("paused: the running job finishes, no new one starts (until `nstd resume`)")
        return 0
    return _with_store(args, act)


def _resume(args) -> int:
    def act(store):
        print("resumed: jobs start again" if store.resume() else "was not paused")
        return 0
    return _with_store(args, act)


def _rerun(args) -> int:
    from nstd.config import load_config
    from nstd.review.rerun import parse_settings, rerun
    from nstd.store import Store

    config = load_config(args.config)
    settings = parse_settings(args.set or [])
    store = Store(config.state, readonly=True)
    try:
        new = rerun(config, store, args.input, args.style or [], settings)
    finally:
        store.close()
    if not new:
        print("nothing new to paint: these styles and settings were painted already (change them with "
              "--style or --set)")
        return 0
    print(f"queued {'job' if len(new) == 1 else 'jobs'} {', '.join(map(str, new))}; a running daemon paints "
          f"{'it' if len(new) == 1 else 'them'} beside the earlier results")
    return 0


def _priority(args) -> int:
    def act(store):
        if not store.set_priority(args.job, args.priority):
            print(f"nstd: job {args.job} is not queued (only a queued job's place can change)", file=sys.stderr)
            return 1
        print(f"job {args.job}: priority {args.priority}")
        return 0
    return _with_store(args, act)


def _retry(args) -> int:
    from nstd.config import load_config
    from nstd.review.rerun import retry
    from nstd.store import Store

    config = load_config(args.config)
    store = Store(config.state, readonly=True)
    try:
        n, returned, problems = retry(config, store, args.job or None)
    finally:
        store.close()
    if n or returned or not problems:
        print(f"{plural(n, 'failed job')} queued again; {plural(returned, 'refused input')} moved back to the inbox; "
              "a running daemon picks them up")
    for problem in problems:
        print(f"nstd: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _delete(args) -> int:
    from nstd.config import load_config
    from nstd.outbox.results import delete_result

    config = load_config(args.config, check_images=False)

    def act(store):
        for job_id in args.job:
            moved = delete_result(store, config.outbox, job_id)
            where = moved[0].parent if moved else "-"
            print(f"job {job_id}: moved {plural(len(moved), 'file')} to the trash ({where}); "
                  f"`nstd restore {job_id}` brings them back within {TRASH_DAYS} days")
        _pages_follow(store, config)
        return 0
    return _with_store(args, act)


def _pages_follow(store, config) -> None:
    """A change made while no daemon runs rewrites the gallery itself: no card is left pointing at a
    file that moved (a running daemon rewrites it at once on its own)."""
    from nstd.review.gallery import write_gallery

    if store.daemon_running():
        return
    try:
        write_gallery(store, config.outbox, stopped=True)
    except OSError as e:
        print(f"the gallery could not be rewritten ({e}); `nstd gallery` rewrites it", file=sys.stderr)


def _restore(args) -> int:
    from nstd.config import load_config
    from nstd.outbox.results import restore_result

    config = load_config(args.config, check_images=False)

    def act(store):
        for job_id in args.job:
            image = restore_result(store, config.outbox, job_id)
            print(f"job {job_id}: restored {image}")
        _pages_follow(store, config)
        return 0
    return _with_store(args, act)


def _gallery(args) -> int:
    from nstd.config import load_config
    from nstd.outbox.results import audit
    from nstd.review.gallery import write_gallery
    from nstd.store import Store

    config = load_config(args.config, check_images=False)
    store = Store(config.state, readonly=True)
    try:
        gone = audit(store)  # results deleted by hand while no daemon ran: the pages say so
        pages = write_gallery(store, config.outbox, full=True, stopped=not store.daemon_running())
    finally:
        store.close()
    print(f"wrote {pages[0]}" + (f" and {plural(len(pages) - 1, 'more page')}" if len(pages) > 1 else "")
          + (f"; {plural(len(gone), 'result')} deleted by hand left the gallery (job {', '.join(map(str, gone))})"
             if gone else ""))
    return 0


def _init(args) -> int:
    from nstd.starter import make_folder

    config = make_folder(args.folder.resolve(), adopt=args.adopt)
    shown_config = command_path(config)
    print(f"made {config.parent}: the folders, sample styles in styles/ and {config.name} (config.example.yaml, "
          f"every key explained)\n"
          f"  check it:     nstd check --config {shown_config}\n"
          f"  try a rule:   nstd rules --config {shown_config} swirls/photo.jpg\n"
          f"  run it:       nstd run --config {shown_config}\n"
          f"  then drop photos into {config.parent / 'inbox'} (or a folder of it) and watch "
          f"{config.parent / 'outbox' / 'index.html'}")
    return 0


def listen_type(value: str) -> str:
    from nstd.config.schema import host_port
    try:
        return host_port(value, "0.0.0.0:8040")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def command_path(path: Path) -> str:
    """A path as short as it can be typed from here; whole where the short one would not read as a path
    (from / a relative `srv/nstd/config.yaml` looks like a typo)."""
    cwd = Path.cwd()
    if cwd == Path(cwd.anchor):
        return str(path)
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def _rules(args) -> int:
    from nstd.config import load_config
    from nstd.intake.rules import explain
    from nstd.review.explain import render_explanation

    config = load_config(args.config, check_images=False)
    explanations = [explain(config, photo) for photo in args.photo]
    print("\n".join(render_explanation(config, e) for e in explanations))
    return 0 if all(e.jobs for e in explanations) else 1


def _worker(args) -> int:
    from nstd.config import load_config
    from nstd.work.remote.worker_main import run

    config = load_config(args.config)
    if config.worker.backend != "redis":
        raise ConfigError(str(config.path), ["worker.backend: `nstd worker` needs `redis` (with worker.redis_url)"])
    return run(config)


def _web(args) -> int:
    from nstd.config import load_config
    from nstd.review.web.app import serve

    config = load_config(args.config)
    if args.listen:
        config = dataclasses.replace(config, web=config.web.model_copy(update={"listen": args.listen}))
    print(f"nstd web on http://{config.web.listen}/ ("
          + ("actions need the password" if config.web.password_hash else "read-only: no web.password_hash")
          + ")", file=sys.stderr, flush=True)
    serve(config)
    return 0


def _web_password(args) -> int:
    import getpass

    from nstd.review.web.auth import hash_password

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
    if sys.stdin.isatty() and getpass.getpass("again: ") != password:
        print("nstd: the two passwords differ", file=sys.stderr)
        return 2
    try:
        hashed = hash_password(password)
    except ValueError as e:
        print(f"nstd: {e}", file=sys.stderr)
        return 2
    if args.config is not None:
        from nstd.config.edit import set_web_password_hash
        print(f"{args.config}: {set_web_password_hash(args.config, hashed)}; `systemctl reload nstd-web` "
              "(or a restart of nstd web) applies it")
        return 0
    print(f'  password_hash: "{hashed}"')
    print("nstd: put that line in your config's web: section (under `web:`, as printed), replacing the "
          "password_hash there; or run `nstd web-password --config FILE` to have it written in place",
          file=sys.stderr)
    return 0


def _demo(args) -> int:
    from contextlib import nullcontext

    from PIL import Image

    from nstd.daemon import Daemon
    from nstd.demo import JobBars, command_for, make_workspace, schedule_words

    root = args.workspace.resolve()
    renewing = root.is_dir() and any(root.iterdir())
    config = make_workspace(root, args.content or [], args.style, args.size, args.iterations)
    pictures = sorted(p for p in (root / "inbox").rglob("*.*") if p.is_file() and not p.name.startswith("."))
    first = pictures[0] if pictures else None
    with Image.open(first) if first else nullcontext() as img:
        plan = schedule_words(args.size, args.iterations, img.size) if img else f"{args.size} px"
    print(("renewed" if renewing else "made") + f" the demo workspace {root}: {len(pictures)} pictures in the "
          f"inbox; painting each at {plan}...", flush=True)
    bars = JobBars()
    try:
        Daemon(config, until_idle=True, log_json=args.log_json, progress_view=bars).run()
    finally:
        bars.close()
    outputs = sorted(p for p in (root / "outbox").glob("*/*") if p.suffix in (".png", ".jpg")
                     and not p.name.endswith(".loss.png"))
    print(f"\ndone: {plural(len(outputs), 'result')} in {root / 'outbox'}; open {root / 'outbox' / 'index.html'} "
          "in a browser to review them")
    for p in outputs:
        print(f"  {p}  (loss log {p.with_suffix('.json').name})")
    print(f"inputs archived in {root / 'archive'}\n"
          f"run it as a daemon: {command_for(sys.argv[0])} run --config {config}")
    return 0 if outputs else 1


# Every number typed has both bounds: a 23-digit id would overflow SQLite's integers (a traceback).
JOB_ID = number_type(int, 1, 2**63 - 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nstd", description="Neural style transfer daemon: photos dropped in an inbox folder are painted "
        "in the styles its rules name, into an outbox. `nstd demo` shows it; `nstd init DIR` starts your own.")
    parser.add_argument("--version", action="version", version=f"nstd {__version__}")
    parser.add_argument("--log-json", action=argparse.BooleanOptionalAction, default=None,
                        help="JSON log lines (default: only when stderr is not a terminal)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func, config: bool = True, more: str = ""):
        q = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + "." + (" " + more if more else ""))
        if config:
            q.add_argument("--config", "-c", type=Path, required=True, help="the YAML config file")
        q.set_defaults(func=func)
        return q

    p = command("stylize", "paint one image in one or more styles", _stylize, config=False,
                more="Writes the image and its loss log (.json) beside it.")
    p.add_argument("content", type=Path, help="the photo")
    p.add_argument("--style", "-s", action="append", required=True, metavar="STYLE[:WEIGHT]",
                   help="a style image, repeatable; weights blend several styles")
    p.add_argument("--output", "-o", type=Path, required=True, help="output .png or .jpg")
    p.add_argument("--init-image", type=Path, help="start from this image (sets --init image)")
    add_param_flags(p)

    q = command("init", "make a folder to run nstd in: inbox, outbox, sample styles and a config that checks",
                _init, config=False, more="The config is config.example.yaml, every key explained.")
    q.add_argument("folder", type=Path, help="a new or empty folder")
    q.add_argument("--adopt", action="store_true",
                   help="lay out a folder that already holds files (a photo in inbox/, a disk's lost+found), "
                        "writing over none of them; refused if it has a config.yaml")
    q = command("run", "watch the inbox and process files until stopped", _run)
    q.add_argument("--until-idle", action="store_true",
                   help="exit once the inbox is settled and the queue is empty")
    command("check", "validate a config file and report every problem", _check)
    q = command("rules", "say which rule takes a photo, with which styles and parameters, and why the other "
                "rules do not", _rules, more="Nothing is painted or moved: a dry run of the rules.")
    q.add_argument("photo", nargs="+", help="a path inside the inbox, or a name relative to it (it need not exist)")
    q = command("status", "jobs per state, the running job, the queue's order, recent failures", _status)
    q.add_argument("--json", action="store_true", help="the same facts as JSON, for scripts")
    q = command("history", "every job, newest first: id, photo, style, rule, state, when, how long, result",
                _history)
    q.add_argument("--state", help="only jobs in this state: queued, running, done, failed, deleted")
    q.add_argument("--rule", help="only jobs of this rule")
    q.add_argument("--style", help="only jobs with this style")
    q.add_argument("--photo", help="only photos whose inbox name contains this")
    q.add_argument("--since", help="only jobs changed since: 3h, 2d, 1w ago, or a date such as 2026-12-01")
    q.add_argument("--page", type=number_type(int, 1, 10**9), default=1, help="page number, 1 the newest (default: 1)")
    q.add_argument("--per-page", type=number_type(int, 1, 1000), default=20, help="jobs per page (default: 20)")
    q.add_argument("--json", action="store_true", help="the same as JSON, for scripts")
    q = command("reload", "make the running daemon re-read the config, and say whether it took it "
                "(systemctl reload runs this)", _reload)
    q.add_argument("--pid", type=number_type(int, 1, 2**22),
                   help="the daemon's pid (default: the one recorded in the state file)")
    q = command("pause", "let the running job finish and start no new one, until resume", _pause,
                more="The pause is kept in the state file: it outlives a restart.")
    q.add_argument("--why", default="nstd pause", help="a note shown by status (default: nstd pause)")
    command("resume", "start jobs again after a pause", _resume)
    q = command("rerun", "paint an archived or failed photo again with other styles or settings", _rerun,
                more="The photo stays where it is; the new results sit beside the earlier ones.")
    q.add_argument("input", help="the photo's name in the inbox (as `nstd history` shows it), or its file's path")
    q.add_argument("--style", action="append", metavar="NAME", help="a style from the config (repeatable; "
                   "default: the styles it was painted with)")
    q.add_argument("--set", action="append", metavar="KEY=VALUE", help="a parameter, e.g. style_strength=0.7 "
                   "(repeatable; any `nstd stylize` option with _ for -)")
    q = command("priority", "change a queued job's priority (higher runs first)", _priority,
                more="First come, first served within a priority.")
    q.add_argument("job", type=JOB_ID, help="the job's id, as `nstd status` and `nstd history` show it")
    q.add_argument("priority", type=number_type(int, -PRIORITY_LIMIT, PRIORITY_LIMIT),
                   help=f"from {-PRIORITY_LIMIT} to {PRIORITY_LIMIT}; rules start their jobs at 0 unless they say")
    q = command("backup", "copy the state file consistently while the daemon runs (SQLite's online backup)",
                _backup, more="The copy is checked, then renamed into place; an existing file is never overwritten.")
    q.add_argument("dest", type=Path, help="the copy's path, or a folder for a dated name in it")
    command("gallery", "rewrite the outbox's index.html (the daemon keeps it current itself)", _gallery,
            more="Results deleted by hand are first marked as deleted, so the pages show what is there.")
    q = command("retry", "queue failed jobs again and move refused inputs back to the inbox", _retry)
    q.add_argument("job", type=JOB_ID, nargs="*", help="job ids (default: every failed job)")
    q = command("delete", "move results (image, loss log, plot) from the outbox and the gallery to the trash",
                _delete, more=f"`nstd restore` brings them back for {TRASH_DAYS} days; then they are removed.")
    q.add_argument("job", type=JOB_ID, nargs="+", help="job ids, as `nstd history` and the gallery's details show them")
    q = command("restore", "bring deleted results back from the trash into the outbox and the gallery", _restore)
    q.add_argument("job", type=JOB_ID, nargs="+", help="job ids of deleted results (`nstd history --state deleted`)")

    command("worker", "paint jobs from Redis on this host, one at a time (worker.backend: redis)", _worker)
    q = command("web", "serve the gallery live, with the queue and actions, on web.listen", _web)
    q.add_argument("--listen", type=listen_type, metavar="HOST:PORT",
                   help="listen here instead of web.listen (the container image: 0.0.0.0:8040)")
    q = command("web-password", "hash a password for web.password_hash (reads it from the terminal or one line "
                "of stdin)", _web_password, config=False,
                more="With --config the hash is written into that file's web: section in place (comments kept); "
                     "without it, the line to put there is printed.")
    q.add_argument("--config", "-c", type=Path, help="write it into this config file")

    q = command("demo", "paint sample pictures in a fresh workspace and show where they went", _demo, config=False)
    q.add_argument("--workspace", type=Path, default=Path("nstd-demo"), help="a new folder (default: nstd-demo)")
    q.add_argument("--content", type=Path, nargs="*", help="your own photos instead of the generated ones")
    q.add_argument("--style", type=Path, help="your own style image instead of the generated one")
    q.add_argument("--size", type=number_type(int, 16, 4096), default=192,
                   help="longest side of the results, 16 to 4096 (default: 192)")
    q.add_argument("--iterations", type=number_type(int, 1, 10000), default=50,
                   help="iterations per scale (default: 50)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(json=args.log_json)
    try:
        return args.func(args)
    except NstdError as e:
        logs.say_error(f"nstd: {e}")
        return e.exit_code
    except (WeightsError, DeviceError) as e:  # the engine cannot start here: the same code as a worker's
        logs.say_error(f"nstd: {e}")
        return WorkerStartError.exit_code
    except EngineError as e:  # a run that cannot go on (parameters, divergence): the job's error
        logs.say_error(f"nstd: {e}")
        return 1
    except BrokenPipeError:  # `nstd history | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # a path the user gave that cannot be read or written: their fix, not a crash
        where = f"{e.filename}: " if e.filename else ""
        logs.say_error(f"nstd: {where}{e.strerror or e}")
        return 1
    except KeyboardInterrupt:
        return 130
