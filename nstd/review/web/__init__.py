"""`nstd web`: the gallery served live, with the queue and the team's actions.

A separate process from the daemon (which never imports this package): it reads the same state
file, acts through the same functions as the `nstd` commands, serves only files inside the
outbox, and is read-only unless a password is configured.
"""
