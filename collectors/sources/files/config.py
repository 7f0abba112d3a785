"""The ``files`` source's config (re-exported by ``plugin.py``)."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from collectors.sources.base import SourceConfig
from collectors.sources.files.rows import Columns, Defaults, check_mapping
from collectors.sources.files.timestamps import check_format, zone


class Config(SourceConfig):
    """A watched folder ``path`` of ``pattern`` files, polled every ``interval_s`` s.

    ``settle_s``: a file modified less than this many seconds ago is still being written and waits.
    ``header_row``: the 1-based row holding the column names (rows above it are titles and are
    skipped; 0: no header, columns are numbers). ``chunk_size``: readings per emit.
    ``done_dir`` / ``failed_dir`` default to ``path/done`` and ``path/failed``.
    """

    type: Literal["files"]
    path: Path
    pattern: str = Field("*.csv", min_length=1)
    interval_s: float = Field(10.0, gt=0)
    settle_s: float = Field(5.0, ge=0)
    columns: Columns
    defaults: Defaults = Defaults()
    ts_format: str = "iso8601"
    timezone: str = "Asia/Shanghai"
    encoding: str = "utf-8"
    delimiter: str = Field(",", min_length=1, max_length=1)
    header_row: int = Field(1, ge=0)
    sheet: str | None = None
    chunk_size: int = Field(500, ge=1, le=10_000)
    done_dir: Path | None = None
    failed_dir: Path | None = None

    @field_validator("ts_format")
    @classmethod
    def _ts_format(cls, v: str) -> str:
        return check_format(v)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        zone(v)
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {v!r} (utf-8, gbk, gb18030 …)") from exc
        return v

    @model_validator(mode="after")
    def _mapping(self) -> Config:
        check_mapping(self.columns, self.defaults, self.header_row)
        return self

    @property
    def done(self) -> Path:
        """Where files go once their readings were emitted."""
        return self.done_dir or self.path / "done"

    @property
    def failed(self) -> Path:
        """Where files that can't be parsed go."""
        return self.failed_dir or self.path / "failed"
