#!/bin/sh
# The image's start: `run`, `web`, `worker`, `status` and the other commands that read a config get
# --config $NSTD_ROOT/config.yaml; `web` also listens on all of the container's addresses. The
# daemon (`run`) lays out $NSTD_ROOT first (around whatever it holds); the others wait a minute for it to.
set -eu
root="${NSTD_ROOT:-/srv/nstd}"
config="$root/config.yaml"
command="${1:-run}"
[ $# -gt 0 ] && shift

case "$command" in
    init|demo|stylize|web-password|--help|-h|--version)
        exec nstd "$command" "$@" ;;
esac

if [ ! -e "$config" ]; then
    if [ "$command" = run ]; then
        # --adopt: a data folder that already holds files (a photo in inbox/, lost+found) is laid out
        # around them; a plain init would refuse it and the container would restart for ever.
        nstd init --adopt "$root"
    else
        echo "nstd: waiting for the daemon to lay out $root (no $config yet)" >&2
        waited=0
        while [ ! -e "$config" ] && [ "$waited" -lt 60 ]; do sleep 1; waited=$((waited + 1)); done
    fi
fi

if [ "$command" = web ]; then
    exec nstd web --config "$config" --listen "${NSTD_WEB_LISTEN:-0.0.0.0:8040}" "$@"
fi
exec nstd "$command" --config "$config" "$@"
