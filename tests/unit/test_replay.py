"""Replay of JSON-lines files: verbatim bytes, keys, blank lines, errors (with a fake publisher)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.replay import PROGRESS_EVERY, line_key, replay_file
from energy.topics import READINGS


class FakePublisher:
    """Records what it is asked to send; can fail on flush."""

    def __init__(self, fail_flush: bool = False) -> None:
        self.sent: list[tuple[str, str | None, bytes]] = []
        self.flushes = 0
        self.fail_flush = fail_flush

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        self.sent.append((topic, key, value))

    def flush(self, timeout_s: float = 30.0) -> None:
        self.flushes += 1
        if self.fail_flush:
            raise RuntimeError("broker said no")


LINES = [
    b'{"v":1,"unit_id":"U1","source":"f","seq":1,"readings":[]}',
    b'{ "unit_id" : "\xe6\xb1\x9f\xe8\x8b\x8f-7", "v": 1 }  ',  # spaces and UTF-8 kept as they are
    b"not json at all",
    b'{"unit_id": 42}',
    b'["unit_id", "U2"]',
    b'{"v":1,"unit_id":"U3"',  # truncated
    b'"U4"',
    b'{"unit_id":null}',
]


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    return path


def test_line_key() -> None:
    assert [line_key(line) for line in LINES] == ["U1", "江苏-7", None, None, None, None, None, None]


def test_lines_are_sent_verbatim_with_keys(tmp_path: Path) -> None:
    content = b"\n".join(LINES[:2]) + b"\r\n\n   \n" + b"\n".join(LINES[2:]) + b"\n\t\n"
    pub = FakePublisher()
    result = replay_file(write(tmp_path, content), pub)
    assert [value for _, _, value in pub.sent] == LINES
    assert [key for _, key, _ in pub.sent] == ["U1", "江苏-7", None, None, None, None, None, None]
    assert {topic for topic, _, _ in pub.sent} == {READINGS}
    assert result.messages == len(LINES)
    assert result.bytes == sum(len(line) for line in LINES)
    assert result.skipped_blank == 3
    assert pub.flushes == 1


def test_crlf_is_a_line_ending_and_last_line_needs_no_newline(tmp_path: Path) -> None:
    pub = FakePublisher()
    replay_file(write(tmp_path, b'{"unit_id":"A"}\r\n{"unit_id":"B"}'), pub, topic="t")
    assert pub.sent == [("t", "A", b'{"unit_id":"A"}'), ("t", "B", b'{"unit_id":"B"}')]


def test_empty_file(tmp_path: Path) -> None:
    pub = FakePublisher()
    seen: list[int] = []
    result = replay_file(write(tmp_path, b""), pub, progress=seen.append)
    assert (result.messages, result.bytes, result.skipped_blank) == (0, 0, 0)
    assert seen == [0]


def test_progress(tmp_path: Path) -> None:
    n = 2 * PROGRESS_EVERY + 5
    content = b"".join(b'{"unit_id":"U%d"}\n' % i for i in range(n))
    seen: list[int] = []
    replay_file(write(tmp_path, content), FakePublisher(), progress=seen.append)
    assert seen == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, n]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        replay_file(missing, FakePublisher())
    with pytest.raises(FileNotFoundError, match="not a file"):
        replay_file(tmp_path, FakePublisher())


def test_flush_failure_propagates(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="broker said no"):
        replay_file(write(tmp_path, b'{"unit_id":"A"}\n'), FakePublisher(fail_flush=True))
