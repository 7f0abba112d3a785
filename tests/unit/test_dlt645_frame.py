"""DL/T 645-2007 frame encoding and decoding against frames written byte by byte from the layout in
domain.md §7 (68 A0..A5 68 C L DATA+33H CS 16, address and DI lowest byte first)."""

from __future__ import annotations

import pytest

from collectors.sources.dlt645.frame import (
    AddressMismatch,
    ChecksumError,
    DataFormat,
    ErrorReply,
    FrameError,
    UnexpectedFrame,
    address_bytes,
    decode_reply,
    decode_value,
    encode_error_reply,
    encode_read,
    encode_read_reply,
    encode_value,
    normalise_di,
    parse_frame,
    split_frame,
)

METER = "123456789012"
ENERGY = DataFormat(4, 2)

# Read 正向有功总电能 (DI 00 01 00 00) from meter 123456789012, by hand:
READ_REQUEST = bytes(
    [
        0x68,
        0x12, 0x90, 0x78, 0x56, 0x34, 0x12,  # address 12 34 56 78 90 12, lowest pair first
        0x68,
        0x11,  # read data
        0x04,  # L: the 4 DI bytes
        0x33, 0x33, 0x34, 0x33,  # DI0..DI3 = 00 00 01 00, each +33H
        0x68,  # CS: 68+12+90+78+56+34+12+68+11+04+33+33+34+33 = 872 = 3·256 + 0x68
        0x16,
    ]
)  # fmt: skip

# The meter's reply: 12345.67 kWh = BCD 01 23 45 67, lowest byte first 67 45 23 01, +33H:
READ_REPLY = bytes(
    [
        0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68,
        0x91,  # normal read reply
        0x08,  # L: DI (4) + value (4)
        0x33, 0x33, 0x34, 0x33,  # DI 00010000
        0x9A, 0x78, 0x56, 0x34,  # 67 45 23 01 + 33H
        0x88,  # CS: 1416 mod 256
        0x16,
    ]
)  # fmt: skip

# The meter's error reply "无请求数据" (error byte 02H, +33H = 35H):
ERROR_REPLY = bytes([0x68, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x68, 0xD1, 0x01, 0x35, 0x8D, 0x16])


def test_encode_read_builds_the_hand_written_request() -> None:
    assert encode_read(METER, "00010000") == READ_REQUEST


def test_encode_read_puts_the_wake_up_preamble_first() -> None:
    assert encode_read(METER, "00 01 00 00", preamble=4) == b"\xfe\xfe\xfe\xfe" + READ_REQUEST


def test_decode_reply_reads_12345_67_kwh_from_the_hand_written_reply() -> None:
    reply = decode_reply(READ_REPLY, ENERGY, address=METER, di="00010000")
    assert (reply.address, reply.di, reply.value) == (METER, "00010000", 12345.67)


def test_decode_reply_takes_the_format_of_a_known_di_and_skips_the_preamble() -> None:
    assert decode_reply(b"\xfe\xfe\xfe\xfe" + READ_REPLY).value == 12345.67


def test_encode_read_reply_builds_the_hand_written_reply() -> None:
    assert encode_read_reply(METER, "00010000", 12345.67, ENERGY) == READ_REPLY


def test_bad_checksum_raises_checksum_error() -> None:
    broken = READ_REPLY[:-2] + bytes([0x89, 0x16])
    with pytest.raises(ChecksumError, match="89H"):
        decode_reply(broken, ENERGY)


def test_reply_from_another_meter_raises_address_mismatch() -> None:
    with pytest.raises(AddressMismatch, match="123456789012, expected 000000000001"):
        decode_reply(READ_REPLY, ENERGY, address="000000000001")


def test_reply_for_another_di_is_an_unexpected_frame() -> None:
    with pytest.raises(UnexpectedFrame, match="expected 02010100"):
        decode_reply(READ_REPLY, ENERGY, di="02010100")


def test_a_request_echoed_back_is_an_unexpected_frame() -> None:
    with pytest.raises(UnexpectedFrame, match="request"):
        decode_reply(READ_REQUEST, ENERGY, address=METER)


def test_error_reply_raises_with_its_code_and_meaning() -> None:
    assert encode_error_reply(METER, 0x02) == ERROR_REPLY
    with pytest.raises(ErrorReply) as caught:
        decode_reply(ERROR_REPLY, ENERGY, address=METER)
    assert caught.value.code == 0x02
    assert caught.value.meanings == ["无请求数据 no such data (DI not supported)"]
    assert "error 02H" in str(caught.value)


def test_error_reply_names_every_bit_set() -> None:
    with pytest.raises(ErrorReply) as caught:
        decode_reply(encode_error_reply(METER, 0x05))
    assert [m.split()[0] for m in caught.value.meanings] == ["其他错误", "密码错/未授权"]


def test_unknown_di_without_a_format_raises() -> None:
    reply = encode_read_reply(METER, "04000401", 1.0, DataFormat(2, 0))
    with pytest.raises(FrameError, match="no format known for DI 04000401"):
        decode_reply(reply)
    assert decode_reply(reply, DataFormat(2, 0)).value == 1.0


def test_value_of_the_wrong_length_raises() -> None:
    with pytest.raises(FrameError, match="3 bytes, the format wants 4"):
        decode_reply(encode_read_reply(METER, "00010000", 1.5, DataFormat(3, 2)), ENERGY)


def test_non_bcd_value_raises() -> None:
    with pytest.raises(FrameError, match="not BCD"):
        decode_value(bytes([0x00, 0x0A, 0x00, 0x00]), ENERGY)


@pytest.mark.parametrize(
    ("fmt", "value", "wire"),
    [
        (DataFormat(2, 1), 220.1, bytes([0x01, 0x22])),  # voltage XXX.X V
        (DataFormat(3, 3, signed=True), 5.025, bytes([0x25, 0x50, 0x00])),  # current XXX.XXX A
        (DataFormat(3, 4, signed=True), -1.2345, bytes([0x45, 0x23, 0x81])),  # power, sign bit set
        (DataFormat(4, 2), 999999.99, bytes([0x99] * 4)),  # the largest energy register
    ],
)
def test_values_encode_to_bcd_lowest_byte_first_and_back(fmt: DataFormat, value: float, wire: bytes) -> None:
    assert encode_value(value, fmt) == wire
    assert decode_value(wire, fmt) == value


def test_a_value_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(1_000_000.0, ENERGY)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(-1.0, ENERGY)


def test_split_frame_skips_noise_and_preamble_and_waits_for_the_rest() -> None:
    stream = b"\x00\x68\x01" + b"\xfe" * 4 + READ_REPLY
    assert split_frame(stream[:-1]) == (None, 7)  # incomplete: keep the bytes from the 68H on
    assert split_frame(stream) == (READ_REPLY, len(stream))
    assert split_frame(b"\xfe\xfe") == (None, 2)


def test_split_frame_returns_frames_one_at_a_time() -> None:
    stream = READ_REQUEST + ERROR_REPLY
    first, used = split_frame(stream)
    assert (first, split_frame(stream[used:])[0]) == (READ_REQUEST, ERROR_REPLY)


def test_parse_frame_rejects_a_length_byte_that_does_not_match() -> None:
    with pytest.raises(FrameError, match="does not match L=8"):
        parse_frame(READ_REPLY[:-3] + READ_REPLY[-2:])


def test_addresses_must_be_12_digits_and_dis_4_hex_bytes() -> None:
    assert address_bytes("000000000001") == bytes([1, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="12 decimal digits"):
        address_bytes("12345678901A")
    assert normalise_di("02-01-01-00") == "02010100"
    with pytest.raises(ValueError, match="4 bytes of hex"):
        normalise_di("000100")
