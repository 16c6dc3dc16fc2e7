"""The container checks against `docker inspect` output read from real sandbox hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coderig_deploy.bench.checks import FAIL, PASS
from coderig_deploy.profiles import load_profile
from coderig_deploy.verify.container import (
    ContainerExpect,
    HostContainers,
    container_checks,
    expect_for,
    exposed_containers,
)

HERE = Path(__file__).parent
PROFILES = HERE / "profiles"


def _seen(case: str) -> HostContainers:
    data = json.loads((HERE / "inspect" / f"{case}.json").read_text())
    return HostContainers(data["container"], data["image"], [data["container"]])


def _expect(case: str) -> ContainerExpect:
    """The plan the fixture's host was provisioned with (its image, budget-4070's env)."""
    image = _seen(case).container["Config"]["Image"]  # type: ignore[index]
    expect = expect_for(load_profile("budget-4070-docker", PROFILES), image)
    assert expect is not None
    return expect


def _statuses(case: str, expect: ContainerExpect) -> dict[str, str]:
    seen = _seen(case)
    return {c.name: c.status for c in [*container_checks(seen, expect), exposed_containers(seen, "")]}


def test_managed_container_passes_every_check() -> None:
    statuses = _statuses("managed", _expect("managed"))
    assert statuses == {name: PASS for name in (
        "container_running", "container_image_digest", "container_gpu_request", "container_env",
        "container_port_loopback", "container_health", "container_restarts", "container_restart_policy",
        "containers_loopback_only")}


def test_hand_started_container_on_all_addresses_is_flagged() -> None:
    seen = _seen("hand_started_exposed")
    checks = {c.name: c for c in [*container_checks(seen, _expect("hand_started_exposed")),
                                  exposed_containers(seen, "")]}
    assert checks["container_port_loopback"].status == FAIL
    assert "0.0.0.0:11434" in checks["container_port_loopback"].reason
    assert checks["containers_loopback_only"].status == FAIL
    assert checks["container_gpu_request"].status == FAIL
    assert checks["container_env"].status == FAIL and "OLLAMA_KV_CACHE_TYPE" in checks["container_env"].reason
    assert checks["container_health"].reason == "health is none"
    assert checks["container_restart_policy"].status == FAIL
    assert checks["container_image_digest"].status == PASS  # the right image, run the wrong way


def test_another_digest_fails_the_pin() -> None:
    expect = _expect("managed")
    other = ContainerExpect(**{**expect.__dict__, "image": expect.image.split("@")[0] + "@sha256:" + "1" * 64})
    assert _statuses("managed", other)["container_image_digest"] == FAIL


def test_restarts_are_counted() -> None:
    seen = _seen("managed")
    assert seen.container is not None
    seen.container["RestartCount"] = 3
    check = next(c for c in container_checks(seen, _expect("managed")) if c.name == "container_restarts")
    assert (check.status, check.reason) == (FAIL, "restarted 3 time(s): see `docker logs ollama`")


def test_missing_container_is_one_failed_check() -> None:
    checks = container_checks(HostContainers(None, None, []), _expect("managed"))
    assert [(c.name, c.status) for c in checks] == [("container_present", FAIL)]


def test_an_exposed_plan_allows_its_own_binding() -> None:
    seen = _seen("hand_started_exposed")
    assert exposed_containers(seen, "0.0.0.0:11434").status == FAIL  # [::]:11434 is still beyond it
    seen.container["NetworkSettings"]["Ports"]["11434/tcp"] = [  # type: ignore[index]
        {"HostIp": "0.0.0.0", "HostPort": "11434"}]
    assert exposed_containers(seen, "0.0.0.0:11434").status == PASS


def test_native_profile_has_no_container() -> None:
    assert expect_for(load_profile("budget-4070")) is None


def test_docker_without_image_is_refused(tmp_path: Path) -> None:
    from coderig_deploy.errors import UserInputError

    (tmp_path / "noimage.yaml").write_text("extends: budget-4070\nollama: {runtime: docker}\n")
    with pytest.raises(UserInputError, match="ollama.image"):
        expect_for(load_profile("noimage", tmp_path))


def test_apply_skips_hosts_the_sdk_cannot_reach_saying_why() -> None:
    """A local connection has no SSH and a become user may not reach dockerd: both get one
    skipped check with the reason (no connection is tried, so nothing here needs a host)."""
    from coderig_deploy.container_spec import container_spec
    from coderig_deploy.project import TargetHost
    from coderig_deploy.verify.container import check_provisioned

    spec = container_spec(load_profile("budget-4070-docker", PROFILES))
    assert spec is not None
    hosts = [TargetHost(name="here", connection="local"), TargetHost(name="ws1", user="ops", become=True)]
    checks = check_provisioned(hosts, spec)
    assert {name: [(c.name, c.status) for c in found] for name, found in checks.items()} == {
        "here": [("container_checks", "skip")], "ws1": [("container_checks", "skip")]}
    assert "verify" in checks["ws1"][0].reason


def test_apply_reports_a_host_whose_dockerd_cannot_be_reached_as_a_failed_check(tmp_path: Path) -> None:
    """The inventory's key and known_hosts paths are strings; nothing listens on port 1."""
    from coderig_deploy.container_spec import container_spec
    from coderig_deploy.project import TargetHost
    from coderig_deploy.verify.container import check_provisioned

    spec = container_spec(load_profile("budget-4070-docker", PROFILES))
    assert spec is not None
    (tmp_path / "known_hosts").write_text("")
    host = TargetHost(name="ws1", address="127.0.0.1", port=1, user="root", key_file=str(tmp_path / "id"),
                      known_hosts=str(tmp_path / "known_hosts"))
    checks = check_provisioned([host], spec)["ws1"]
    assert [(c.name, c.status) for c in checks] == [("container_present", "fail")]
    assert "127.0.0.1" in checks[0].reason


def test_an_air_gapped_container_runs_with_cloud_features_off_and_verify_expects_it() -> None:
    from coderig_deploy.project import AIRGAPPED_ENV

    profile = load_profile("budget-4070-docker", PROFILES)
    plain = expect_for(profile)
    airgapped = expect_for(profile, extra_env=AIRGAPPED_ENV)
    assert plain is not None and airgapped is not None
    assert "OLLAMA_NO_CLOUD" not in plain.env and airgapped.env["OLLAMA_NO_CLOUD"] == "1"
    assert airgapped.env["OLLAMA_HOST"] == "0.0.0.0:11434"  # the run's additions never move the bind
