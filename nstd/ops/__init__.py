"""The daemon's instruments: Prometheus metrics, notifications, sd_notify health, pause and active hours."""
