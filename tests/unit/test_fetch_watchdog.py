"""The fetch watchdog's rule (streams.recovery.undelivered): a partition fetched further than what
was delivered to the agent has lost records. (The watchdog itself reads the offsets out of Faust and
aiokafka; tests/integration/test_restart.py runs it against the real broker.)"""

from streams.recovery import undelivered


def test_a_partition_fetched_to_its_end_with_nothing_delivered_since_the_seek_has_lost_records() -> None:
    # the stall seen after a crash: committed 186, fetched to 374, Faust still at the committed 186
    assert undelivered({("readings", 3): 374}, {("readings", 3): 186}, {("readings", 3): 186}) == {
        ("readings", 3): (374, 186)
    }


def test_a_partition_delivered_up_to_its_position_is_fine() -> None:
    # delivered offset 373 (the last record), position 374: the next fetch
    assert undelivered({("readings", 1): 374}, {("readings", 1): 373}, {("readings", 1): 200}) == {}


def test_right_after_a_seek_the_committed_offset_is_the_next_to_deliver() -> None:
    # Faust sets the delivered offset to the committed one when it seeks; nothing fetched yet
    assert undelivered({("readings", 2): 187}, {("readings", 2): 187}, {("readings", 2): 187}) == {}


def test_a_partition_never_committed_counts_from_zero() -> None:
    assert undelivered({("output", 0): 0}, {}, {}) == {}
    assert undelivered({("output", 0): 12}, {}, {}) == {("output", 0): (12, None)}
