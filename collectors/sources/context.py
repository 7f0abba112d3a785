"""What the agent hands every source plugin's ``create``: the site, a state folder, a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SourceContext:
    """The site a source runs for (``site_id``), a folder it may keep local files in
    (``state_dir``: created by the agent, per site, shared by the site's sources; name your files
    after your source) and the clock it stamps readings with (``clock``: epoch seconds, UTC)."""

    site_id: str
    state_dir: Path
    clock: Callable[[], float] = field(default=time.time)
