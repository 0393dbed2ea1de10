"""What people look at and ask for: the static gallery, `nstd web`, `nstd status`, re-runs and retries."""
