"""Lab ids, subnets and link names derive from the lab's directory, within limits."""

import ipaddress

import pytest

from coderig_deploy.sandbox import naming


def test_lab_id_is_stable_and_differs_between_labs() -> None:
    assert naming.lab_id("/var/lib/coderig/sandbox") == naming.lab_id("/var/lib/coderig/sandbox")
    assert naming.lab_id("/var/lib/coderig/sandbox") != naming.lab_id("/tmp/lab-a")


def test_subnets_are_private_24s_in_the_reserved_range_and_start_per_lab() -> None:
    first = {naming.subnet_candidates(naming.lab_id(f"/labs/{i}"))[0] for i in range(50)}
    assert len(first) > 45  # different labs prefer different subnets
    allowed = ipaddress.IPv4Network("10.80.0.0/12")
    for net in first:
        assert net.prefixlen == 24 and net.subnet_of(allowed)


def test_candidates_cover_every_subnet_once() -> None:
    candidates = naming.subnet_candidates("abcdef")
    assert len(candidates) == len(set(candidates)) == 16 * 256


def test_addresses_in_the_subnet() -> None:
    net = ipaddress.IPv4Network("10.81.7.0/24")
    assert str(naming.bridge_address(net)) == "10.81.7.1"
    assert str(naming.host_address(net, 0)) == "10.81.7.10"
    assert str(naming.host_address(net, 2)) == "10.81.7.12"
    with pytest.raises(ValueError):
        naming.host_address(net, naming.MAX_HOSTS)


def test_link_names_fit_the_kernel_limit_and_differ_per_lab_and_host() -> None:
    names = {naming.veth_name(lab, host) for lab in ("aaaaaa", "bbbbbb") for host in ("ws1", "ws2")}
    assert len(names) == 4
    assert all(len(n) <= 15 for n in names | {naming.bridge_name("aaaaaa")})


def test_host_names_skip_taken_ones() -> None:
    assert naming.host_names("ws", 3, {"ws2"}) == ["ws1", "ws3", "ws4"]


@pytest.mark.parametrize("name,ok", [("ws1", True), ("big-1", True), ("1ws", False),
                                     ("WS1", False), ("a" * 40, False), ("ws_1", False)])
def test_valid_host_names(name: str, ok: bool) -> None:
    assert naming.valid_host_name(name) is ok
