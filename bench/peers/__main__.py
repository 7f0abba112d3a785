"""``python -m bench.peers CONFIG``: run the peer the config names until SIGTERM."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from bench.peers import PeerConfig


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.peers CONFIG.json", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")  # third-party deprecation noise in the peer's log
    config = PeerConfig.load(Path(argv[0]))
    if config.peer == "naive":
        from bench.peers import naive

        naive.run(config)
    elif config.peer == "quix":
        from bench.peers import quix

        quix.run(config)
    else:
        print(f"unknown peer {config.peer!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
