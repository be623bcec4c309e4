"""NAT64 spellings of internal addresses (issue 24 item 7): ``[64:ff9b::a9fe:a9fe]`` reaches
169.254.169.254 through a NAT64 gateway, so it is judged as that IPv4 address."""

from __future__ import annotations

import ipaddress

import pytest

from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy, redact_fetched


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::a9fe:a9fe",
        "64:ff9b::6464:64c8",
    ],  # fmt: skip
)
def test_metadata_through_nat64_is_refused_even_with_private_networks(address: str) -> None:
    policy = NetworkPolicy(allow_private=True)
    assert policy.address_problem(ipaddress.ip_address(address)) == "a cloud metadata endpoint"
    with pytest.raises(WorkerError) as err:
        policy.check_url(f"http://[{address}]/latest/meta-data/", resolve=True)
    assert err.value.category == "BlockedAddress"


def test_private_addresses_through_nat64_follow_the_private_rule() -> None:
    loopback = ipaddress.ip_address("64:ff9b::7f00:1")
    assert NetworkPolicy().address_problem(loopback) == "a loopback address"
    assert NetworkPolicy(allow_private=True).address_problem(loopback) is None
    public = ipaddress.ip_address("64:ff9b::808:808")
    assert NetworkPolicy().address_problem(public) is None


def test_redaction_keeps_where_and_drops_what() -> None:
    message = (
        "http://10.0.0.1/: line 1: cannot detect the transcript format: the first line is "
        "'SECRET=hunter2'; root element <secret-admin>"
    )
    out = redact_fetched(message)
    assert "hunter2" not in out and "secret-admin" not in out
    assert out.startswith("http://10.0.0.1/: line 1: cannot detect the transcript format")
