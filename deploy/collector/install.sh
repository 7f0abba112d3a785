#!/usr/bin/env bash
# Install (or update) the energymon site collector on this machine. Idempotent: run it again to
# upgrade. Needs root (or sudo) and python3 >= 3.11 with venv.
#
#   deploy/collector/install.sh [--dry-run] [--source DIR]
#
#   --dry-run     print every step instead of doing it (nothing is changed)
#   --source DIR  the energymon source tree or wheel to install (default: this checkout)
#
# Steps: system user `energymon` (member of dialout for serial meters); venv /opt/energymon/venv
# with the package; /etc/energymon/site.yaml from the sample (only if missing — never overwritten);
# the systemd unit; `systemctl enable` (started only once site.yaml was edited: see docs/deploy-site.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$HERE/../.." && pwd)"
PREFIX=/opt/energymon
ETC=/etc/energymon
UNIT_DIR=/etc/systemd/system
PYTHON="${PYTHON:-python3}"
DRY=0

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --source) SOURCE="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

run() {  # run a command, or print it in --dry-run mode
  if [ "$DRY" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

if [ "$DRY" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or with sudo), or try --dry-run" >&2
  exit 1
fi

if id energymon >/dev/null 2>&1; then
  echo "user energymon exists"
else
  run useradd --system --home-dir /var/lib/energymon --no-create-home --shell /usr/sbin/nologin \
    --user-group energymon
fi
if getent group dialout >/dev/null 2>&1; then
  run usermod --append --groups dialout energymon
fi

if [ -x "$PREFIX/venv/bin/python" ]; then
  echo "venv $PREFIX/venv exists"
else
  run mkdir -p "$PREFIX"
  run "$PYTHON" -m venv "$PREFIX/venv"
fi
run "$PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "$SOURCE"
run mkdir -p "$PREFIX/docs"
run install -m 0644 "$SOURCE/docs/deploy-site.md" "$PREFIX/docs/deploy-site.md"

run install -d -m 0750 -o root -g energymon "$ETC"
if [ -e "$ETC/site.yaml" ]; then
  echo "$ETC/site.yaml exists: kept"
else
  run install -m 0640 -o root -g energymon "$HERE/site.yaml" "$ETC/site.yaml"
fi

run install -m 0644 "$HERE/energymon-collector.service" "$UNIT_DIR/energymon-collector.service"
run systemctl daemon-reload
run systemctl enable energymon-collector.service
echo "installed. Edit $ETC/site.yaml, check it with:"
echo "  sudo -u energymon $PREFIX/venv/bin/energymon collect check --config $ETC/site.yaml"
echo "then: systemctl restart energymon-collector && journalctl -u energymon-collector -f"
