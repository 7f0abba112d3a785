"""What every thing the local stack and the tests start and stop has in common: ``with`` starts it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Service(ABC):
    """Something with ``start()`` and ``stop()``; as a context manager, entering starts it (and
    returns it), leaving stops it, whether or not an exception is on its way."""

    @abstractmethod
    def start(self) -> object:
        """Start it."""

    @abstractmethod
    def stop(self) -> object:
        """Stop it; idempotent."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
