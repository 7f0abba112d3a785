"""Routing: a unit's contacts by severity, the region's duty contacts for red, escalation lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.channels import LogChannel
from alerts.dispatcher import Dispatcher
from alerts.lifecycle import Policy, on_change
from alerts.routing import ChannelSpec, RegionRoute, RoutingConfig, Target, targets
from energy.registry import ContactInfo, UnitInfo
from energymon.settings import AlertSettings, Settings
from tests.notifications import make_alert

ROUTING = RoutingConfig(
    channels={
        "mail": ChannelSpec(kind="email"),
        "js-duty": ChannelSpec(kind="dingtalk"),
        "log": ChannelSpec(kind="log"),
    },
    regions={
        "江苏": RegionRoute(
            duty=(ContactInfo(name="江苏值班", channel="js-duty", min_severity="red"),),
            escalation=(ContactInfo(name="主任", channel="mail", recipient="boss@js.example", lang="both"),),
        ),
        "*": RegionRoute(
            duty=(ContactInfo(name="国家中心", channel="mail", recipient="duty@nation.example"),)
        ),
    },
    always=(ContactInfo(name="log", channel="log", min_severity="red"),),
)


def unit(region: str) -> UnitInfo:
    return UnitInfo(
        unit_id="U1",
        name="某钢铁",
        region=region,
        grid_region="华东",
        industry="steel",
        contacts=(
            ContactInfo(name="能源岗", channel="mail", recipient="energy@u1.example", min_severity="yellow"),
            ContactInfo(
                name="厂长", channel="mail", recipient="boss@u1.example", min_severity="red", lang="en"
            ),
        ),
    )


def who(region: str, kind: str = "raised", severity: str = "yellow") -> list[tuple[str, str | None]]:
    return [(t.channel, t.recipient) for t in targets(ROUTING, unit(region), kind, severity)]  # type: ignore[arg-type]


def test_yellow_reaches_only_the_units_yellow_contacts() -> None:
    assert who("江苏", severity="yellow") == [("mail", "energy@u1.example")]
    assert who("江苏", severity="orange") == [("mail", "energy@u1.example")]


def test_red_reaches_all_unit_contacts_and_the_regions_duty() -> None:
    assert who("江苏", severity="red") == [
        ("log", None),
        ("mail", "energy@u1.example"),
        ("mail", "boss@u1.example"),
        ("js-duty", None),
    ]


def test_duty_of_another_region_does_not_hear_it() -> None:
    assert ("js-duty", None) not in who("广东", severity="red")
    assert ("mail", "duty@nation.example") in who("广东", severity="red")  # the "*" region


def test_green_raise_reaches_nobody_and_resolve_follows_the_routed_severity() -> None:
    assert who("江苏", severity="green") == []
    assert who("江苏", kind="resolved", severity="red") == who("江苏", severity="red")


def test_escalation_goes_to_the_regions_escalation_list_only() -> None:
    assert targets(ROUTING, unit("江苏"), "escalated", "red") == [
        Target("mail", "boss@js.example", "both", ("主任",))
    ]


def test_a_unit_outside_the_registry_gets_always_and_default_duty() -> None:
    assert [(t.channel, t.recipient) for t in targets(ROUTING, None, "raised", "red")] == [
        ("log", None),
        ("mail", "duty@nation.example"),
    ]


def test_one_target_per_channel_and_recipient_with_languages_merged() -> None:
    routing = RoutingConfig(
        channels={"mail": ChannelSpec(kind="email")},
        always=(
            ContactInfo(name="a", channel="mail", recipient="x@example", lang="zh"),
            ContactInfo(name="b", channel="mail", recipient="x@example", lang="en"),
        ),
    )
    assert targets(routing, None, "raised", "yellow") == [Target("mail", "x@example", "both", ("a", "b"))]


def test_secrets_come_from_files_and_environment(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "s").write_text("from-file\n")
    monkeypatch.setenv("HOOK_TOKEN", "from-env")
    spec = ChannelSpec(
        kind="webhook",
        options={"url": "http://x", "secret_file": str(tmp_path / "s"), "token_env": "HOOK_TOKEN"},
    )
    assert spec.split() == ({"url": "http://x"}, {"secret": "from-file", "token": "from-env"})


def test_the_email_channels_ca_file_stays_a_plain_option(tmp_path: Path) -> None:
    """A CA bundle is a file the channel opens, not a secret to read (it was read as secret "ca", and
    the channel then trusted only the system's CAs)."""
    ca = tmp_path / "site-ca.pem"
    ca.write_text("not read by split\n")
    spec = ChannelSpec(kind="email", options={"host": "mail", "ca_file": str(ca), "password_env": "NOPE_X"})
    with pytest.raises(ValueError, match="NOPE_X"):
        spec.split()
    plain, secrets = ChannelSpec(kind="email", options={"host": "mail", "ca_file": str(ca)}).split()
    assert plain == {"host": "mail", "ca_file": str(ca)} and secrets == {}


def test_the_dispatcher_names_the_unit_from_the_registry_or_leaves_the_id(tmp_path: Path) -> None:
    """No broker: the dispatcher is built but not run; its registry view is set by hand."""
    settings = Settings(_env_file=None, alerts=AlertSettings(outbox_file=tmp_path / "o.db"))
    d = Dispatcher(settings, ROUTING, channels={name: LogChannel() for name in ROUTING.channels})
    d.units = {"U1": unit("江苏")}
    for unit_id, name in (("U1", "某钢铁"), ("U2", None)):
        alert = make_alert(key=f"{unit_id}|hourly_ceiling", unit_id=unit_id)
        step = on_change(None, alert, 0, Policy())
        pending = d.pending(step)
        assert pending and {p.notification.unit_name for p in pending} == {name}, unit_id
    d.outbox.close()
