"""Scale-out on Dramatiq and Redis: worker hosts paint, the daemon stays the one watcher and the
one owner of the SQLite state. `broker` is what both sides share (no torch); `dispatcher` is the
daemon's side; `worker_main` is `nstd worker`, a host's side.
"""
