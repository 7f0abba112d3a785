"""DL/T 645-2007 frames: building read requests and replies, finding frames in a byte stream,
decoding replies. Pure functions, no I/O.

Layout (domain.md §7, [S]: seen in several third-party implementations, not in the standard's
text): ``[FE FE FE FE] 68 A0..A5 68 C L DATA CS 16``

* address: 12 decimal digits, 6 BCD bytes sent lowest pair first (``123456789012`` → ``12 90 78 56 34
  12``);
* ``L``: the number of DATA bytes; every DATA byte is sent +33H (mod 256);
* ``CS``: the sum of the bytes from the first 68H to the end of DATA, mod 256;
* data identifier (DI): 4 bytes written DI3 DI2 DI1 DI0 (``00010000``), sent DI0 first;
* values: BCD, lowest byte first, a fixed number of decimals per DI (:class:`DataFormat`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

START = 0x68
END = 0x16
WAKE_UP = 0xFE
OFFSET = 0x33
READ = 0x11
READ_REPLY = 0x91
READ_ERROR = 0xD1
#: Control bit 7: sent by the meter (a reply).
REPLY_BIT = 0x80
#: 68 A0..A5 68 C L (before DATA) and CS 16 (after it).
HEADER_LEN = 10
TRAILER_LEN = 2

#: Meaning of the bits of the error byte of a D1H reply ([S]: the same table in several
#: third-party implementations; bit 7 reserved).
ERROR_BITS: dict[int, str] = {
    0x01: "其他错误 other error",
    0x02: "无请求数据 no such data (DI not supported)",
    0x04: "密码错/未授权 wrong password / not authorised",
    0x08: "通信速率不能更改 baud rate cannot be changed",
    0x10: "年时区数超 too many yearly time zones",
    0x20: "日时段数超 too many daily periods",
    0x40: "费率数超 too many tariffs",
}

_ADDRESS = re.compile(r"^\d{12}$")
_DI = re.compile(r"^[0-9A-Fa-f]{8}$")


class FrameError(ValueError):
    """Bytes that are not a usable DL/T 645 frame."""


class ChecksumError(FrameError):
    """The CS byte does not match the frame's bytes."""


class UnexpectedFrame(FrameError):
    """A well-formed frame that is not the reply waited for (a request or an echo, another DI)."""


class AddressMismatch(UnexpectedFrame):
    """A reply from another meter than the one asked."""


class ErrorReply(FrameError):
    """The meter answered D1H: ``code`` is its error byte, ``meanings`` the set bits' meanings."""

    def __init__(self, address: str, code: int) -> None:
        self.address = address
        self.code = code
        self.meanings = [text for bit, text in ERROR_BITS.items() if code & bit] or ["reserved"]
        super().__init__(f"meter {address} replied error {code:02X}H: {', '.join(self.meanings)}")


@dataclass(frozen=True, slots=True)
class DataFormat:
    """How a DI's value is encoded: ``length`` BCD bytes with ``decimals`` decimals; ``signed``: the
    top bit of the highest byte is the sign (current, power; [U] check the meter's manual)."""

    length: int
    decimals: int
    signed: bool = False

    @property
    def limit(self) -> float:
        """The largest magnitude the format can carry."""
        top = 8 if self.signed else 10  # the sign takes the highest bit
        return float(top * 10 ** (2 * self.length - 1) - 1) / 10.0**self.decimals


#: Formats of common DIs, by DI (DI3..DI0 as hex). Only 00010000 is in domain.md §7 ([S]); the
#: others and all lengths/decimals are [S] third-party tables — config can override any of them.
KNOWN_FORMATS: dict[str, DataFormat] = {
    "00000000": DataFormat(4, 2),  # 组合有功总电能 kWh
    "00010000": DataFormat(4, 2),  # 正向有功总电能 XXXXXX.XX kWh
    "00020000": DataFormat(4, 2),  # 反向有功总电能 kWh
    "02010100": DataFormat(2, 1),  # A相电压 XXX.X V
    "02010200": DataFormat(2, 1),  # B相电压
    "02010300": DataFormat(2, 1),  # C相电压
    "02020100": DataFormat(3, 3, signed=True),  # A相电流 XXX.XXX A
    "02020200": DataFormat(3, 3, signed=True),  # B相电流
    "02020300": DataFormat(3, 3, signed=True),  # C相电流
    "02030000": DataFormat(3, 4, signed=True),  # 总有功功率 XX.XXXX kW
}


@dataclass(frozen=True, slots=True)
class Frame:
    """A checked frame: ``data`` with the +33H already removed."""

    address: str
    control: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """A normal read reply: ``value`` of ``di`` from the meter at ``address``."""

    address: str
    di: str
    value: float


def normalise_di(di: str) -> str:
    """``"00 01 00 00"`` / ``"0001-0000"`` → ``"00010000"`` (upper-case hex, DI3 first)."""
    text = re.sub(r"[\s._-]", "", di).upper()
    if not _DI.match(text):
        raise ValueError(f"data identifier {di!r} is not 4 bytes of hex (e.g. 00010000)")
    return text


def address_bytes(address: str) -> bytes:
    """The 6 wire bytes of a 12-digit meter address (lowest digit pair first)."""
    if not _ADDRESS.match(address):
        raise ValueError(f"meter address {address!r} is not 12 decimal digits")
    return bytes.fromhex(address)[::-1]


def _address_text(wire: bytes) -> str:
    return wire[::-1].hex().upper()


def di_bytes(di: str) -> bytes:
    """The 4 wire bytes of a DI (DI0 first), before the +33H."""
    return bytes.fromhex(normalise_di(di))[::-1]


def checksum(body: bytes) -> int:
    """CS: the sum of ``body`` (first 68H to the end of DATA) mod 256."""
    return sum(body) % 256


def build_frame(address: str, control: int, data: bytes, preamble: int = 0) -> bytes:
    """A complete frame carrying ``data`` (plain bytes; +33H applied here) after ``preamble`` FEs."""
    if len(data) > 255:
        raise ValueError("DATA is longer than 255 bytes")
    wire_data = bytes((b + OFFSET) % 256 for b in data)
    body = bytes([START, *address_bytes(address), START, control, len(data), *wire_data])
    return bytes([WAKE_UP] * preamble) + body + bytes([checksum(body), END])


def encode_read(address: str, di: str, preamble: int = 0) -> bytes:
    """The 11H read-data request for ``di`` to the meter at ``address``."""
    return build_frame(address, READ, di_bytes(di), preamble)


def encode_value(value: float, fmt: DataFormat) -> bytes:
    """``value`` as ``fmt.length`` BCD bytes, lowest first (raises ValueError when it doesn't fit)."""
    if abs(value) > fmt.limit or (value < 0 and not fmt.signed):
        raise ValueError(f"{value} does not fit {fmt}")
    digits = f"{round(abs(value) * 10**fmt.decimals):0{2 * fmt.length}d}"
    raw = bytearray(bytes.fromhex(digits)[::-1])
    if value < 0:
        raw[-1] |= 0x80
    return bytes(raw)


def decode_value(raw: bytes, fmt: DataFormat) -> float:
    """BCD bytes (lowest first) as a number with ``fmt.decimals`` decimals."""
    if len(raw) != fmt.length:
        raise FrameError(f"value has {len(raw)} bytes, the format wants {fmt.length}")
    big = bytearray(raw[::-1])
    negative = fmt.signed and bool(big[0] & 0x80)
    if fmt.signed:
        big[0] &= 0x7F
    digits = big.hex()
    if not digits.isdigit():
        raise FrameError(f"value bytes {raw.hex(' ').upper()} are not BCD")
    value = int(digits) / 10.0**fmt.decimals
    return -value if negative else value


def encode_read_reply(address: str, di: str, value: float, fmt: DataFormat, preamble: int = 0) -> bytes:
    """The meter's 91H reply carrying ``value`` of ``di``."""
    return build_frame(address, READ_REPLY, di_bytes(di) + encode_value(value, fmt), preamble)


def encode_error_reply(address: str, code: int, preamble: int = 0) -> bytes:
    """The meter's D1H error reply with error byte ``code``."""
    return build_frame(address, READ_ERROR, bytes([code]), preamble)


def split_frame(buffer: bytes | bytearray) -> tuple[bytes | None, int]:
    """The first complete frame in ``buffer`` (68 … 16, checksum not yet checked) and how many bytes
    of ``buffer`` it and anything before it (FE preamble, noise) take; ``(None, n)``: no complete
    frame yet, the first ``n`` bytes can be dropped."""
    at = 0
    while (start := buffer.find(START, at)) >= 0:
        if len(buffer) - start < HEADER_LEN:
            return None, start
        if buffer[start + 7] != START:
            at = start + 1
            continue
        end = start + HEADER_LEN + buffer[start + 9] + TRAILER_LEN
        if len(buffer) < end:
            return None, start
        if buffer[end - 1] != END:
            at = start + 1
            continue
        return bytes(buffer[start:end]), end
    return None, len(buffer)


def parse_frame(raw: bytes) -> Frame:
    """A frame's address, control code and DATA (−33H); FE preamble bytes before it are allowed."""
    raw = raw.lstrip(bytes([WAKE_UP]))
    if len(raw) < HEADER_LEN + TRAILER_LEN or raw[0] != START or raw[7] != START:
        raise FrameError(f"not a DL/T 645 frame: {raw.hex(' ').upper()}")
    end = HEADER_LEN + raw[9]
    if len(raw) != end + TRAILER_LEN or raw[-1] != END:
        raise FrameError(f"frame length {len(raw)} does not match L={raw[9]}")
    if checksum(raw[:end]) != raw[end]:
        raise ChecksumError(f"checksum {raw[end]:02X}H, the bytes sum to {checksum(raw[:end]):02X}H")
    data = bytes((b - OFFSET) % 256 for b in raw[HEADER_LEN:end])
    return Frame(_address_text(raw[1:7]), raw[8], data)


def decode_reply(
    raw: bytes, fmt: DataFormat | None = None, *, address: str | None = None, di: str | None = None
) -> Reply:
    """The value in a 91H reply. ``fmt`` defaults to :data:`KNOWN_FORMATS` of the reply's DI;
    ``address`` / ``di``: what was asked (AddressMismatch / UnexpectedFrame otherwise). Raises
    ErrorReply for a D1H reply, ChecksumError, FrameError."""
    frame = parse_frame(raw)
    if address is not None and frame.address != address:
        raise AddressMismatch(f"reply from meter {frame.address}, expected {address}")
    if not frame.control & REPLY_BIT:
        raise UnexpectedFrame(f"control {frame.control:02X}H is a request, not a reply")
    if frame.control == READ_ERROR:
        raise ErrorReply(frame.address, frame.data[0] if frame.data else 0)
    if frame.control != READ_REPLY:
        raise UnexpectedFrame(f"control {frame.control:02X}H is not a read reply (91H)")
    if len(frame.data) < 4:
        raise FrameError(f"reply DATA has {len(frame.data)} bytes, fewer than a DI")
    got_di = frame.data[3::-1].hex().upper()
    if di is not None and got_di != normalise_di(di):
        raise UnexpectedFrame(f"reply for DI {got_di}, expected {normalise_di(di)}")
    fmt = fmt or KNOWN_FORMATS.get(got_di)
    if fmt is None:
        raise FrameError(f"no format known for DI {got_di}: configure length and decimals")
    return Reply(frame.address, got_di, decode_value(frame.data[4:], fmt))
