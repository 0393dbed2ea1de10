"""What the team can do from the page; each is the function an `nstd` command calls.

Each action takes (store, form, path params) and returns the message shown to the person.
"""

from __future__ import annotations

from nstd.core.errors import NstdError
from nstd.core.jobs import checked_priority, variant_words
from nstd.core.names import shown
from nstd.outbox.results import delete_result, restore_result
from nstd.outbox.trash import TRASH_DAYS
from nstd.review.rerun import parse_settings, rerun_input, retry

# The form fields of a re-run: the strength, the main weights, iterations or time budget; any other parameter
# via `nstd rerun`. A strength given (the lighter / stronger buttons) chooses the style weight itself,
# so the weight field the same form sends along is left out then.
RERUN_FIELDS = ("style_strength", "style_weight", "content_weight", "tv_weight", "iterations", "budget_seconds", "size")


class Undoable(str):
    """An action's message that comes with the route that undoes it (the page offers a button)."""

    def __new__(cls, message: str, undo: str):
        self = super().__new__(cls, message)
        self.undo = undo
        return self


def ACTIONS(app) -> dict:  # noqa: N802  (a table, named as one)
    config = app.config

    def rerun(store, form, params):
        job = store.find_job(int(params["job"]))
        if job is None:
            raise NstdError(f"job {params['job']}", "no such job")
        inp = store.input(job.input_id)
        if inp is None:
            raise NstdError(job.input_relpath, "the photo's record is gone")
        given = [k for k in RERUN_FIELDS if str(form.get(k, "")).strip()]
        if "style_strength" in given:
            given = [k for k in given if k != "style_weight"]
        pairs = [f"{k}={form[k]}" for k in given]
        if "iterations" in given and "budget_seconds" not in given:
            pairs.append("budget_seconds=")  # iterations typed into a budget's form: the count, not the clock
        settings = parse_settings(pairs)
        style = str(form.get("style") or job.style)
        new = rerun_input(config, store, inp, [style], settings, from_job=job)
        if not new:
            return "these settings were painted already"
        what = variant_words(store.find_job(new[0]).spec)
        return f"queued job {', '.join(map(str, new))}: {shown(job.input_relpath)} in {style}" + (
            f" ({what})" if what else "")

    def retry_job(store, form, params):
        n, _, _ = retry(config, store, job_ids=[int(params["job"])])
        return f"job {params['job']} queued again" if n else f"job {params['job']} is not a failed job"

    def retry_input(store, form, params):
        _, returned, problems = retry(config, store, input_ids=[int(params["input"])])
        if problems:
            raise NstdError(f"input {params['input']}", "; ".join(problems))
        return "moved back to the inbox" if returned else "not a refused input"

    def delete(store, form, params):
        delete_result(store, config.outbox, int(params["job"]))
        return Undoable(f"deleted job {params['job']}'s result: in the trash for {TRASH_DAYS} days",
                        f"/jobs/{params['job']}/restore")

    def restore(store, form, params):
        restore_result(store, config.outbox, int(params["job"]))
        return f"job {params['job']}'s result is back"

    def priority(store, form, params):
        value = checked_priority(int(str(form["priority"]).strip()))
        if not store.set_priority(int(params["job"]), value):
            raise NstdError(f"job {params['job']}", "is not queued (only a queued job's place can change)")
        return f"job {params['job']}: priority {value}"

    def pause(store, form, params):
        store.pause(str(form.get("why") or "paused from the web app")[:200])
        return "paused: the running job finishes, no new one starts"

    def resume(store, form, params):
        return "resumed" if store.resume() else "was not paused"

    return {"/jobs/{job:int}/rerun": rerun, "/jobs/{job:int}/retry": retry_job, "/jobs/{job:int}/delete": delete,
            "/jobs/{job:int}/restore": restore,
            "/jobs/{job:int}/priority": priority, "/inputs/{input:int}/retry": retry_input,
            "/pause": pause, "/resume": resume}
