#!/usr/bin/env bash
# Creates the moto venv (server mode, pinned) in the cache, once.
set -euo pipefail
MOTO_VERSION=5.2.5
CACHE="${SECRETSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secretsync}"
VENV="${SECRETSYNC_VENV:-$CACHE/venv-moto-$MOTO_VERSION}"
if [[ -x "$VENV/bin/moto_server" ]] && "$VENV/bin/python" -c "import moto, botocore" 2>/dev/null; then exit 0; fi
echo "[setup-moto] creating $VENV with moto[server]==$MOTO_VERSION" >&2
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
