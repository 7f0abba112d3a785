"""deploy/collector/install.sh in --dry-run mode: it prints every step and changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "collector" / "install.sh"


def test_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--source", str(ROOT)],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout
    for step in (
        "energymon",  # the user (created, or reported as existing)
        "/opt/energymon/venv",
        f"pip install --quiet --disable-pip-version-check --upgrade {ROOT}",
        "/etc/systemd/system/energymon-collector.service",
        "would run: systemctl enable energymon-collector.service",
    ):
        assert step in out, step
    assert "site.yaml" in out
    assert not list(tmp_path.iterdir())


def test_an_unknown_option_is_refused() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr
