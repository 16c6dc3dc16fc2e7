"""A fleet's report rows: each host judged against its own profile, the reason first."""

from __future__ import annotations

from coderig_deploy.apply import ProfileGroup, host_reports, unmatched_report
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import TargetHost, spec_for
from coderig_deploy.results import HostResult


def test_each_host_is_judged_against_its_own_profile() -> None:
    groups = [ProfileGroup(load_profile("dual-4090"), [TargetHost(name="big1")], reasons={"big1": "auto: 2x"}),
              ProfileGroup(load_profile("budget-4070"), [TargetHost(name="small1")], reasons={"small1": "auto: 1x"})]
    specs = [spec_for(g.profile, g.hosts) for g in groups]
    results = [HostResult(host="big1", status="ok", ok=3), HostResult(host="small1", status="ok", ok=3)]
    rows = {r.host: r for r in host_reports(results, groups, specs)}
    assert (rows["big1"].profile, rows["big1"].profile_reason) == ("dual-4090", "auto: 2x")
    assert rows["big1"].expected_decode_tok_s == load_profile("dual-4090").expect.decode_tok_s
    assert len(rows["big1"].gpu_planned_mib) == 2 and len(rows["small1"].gpu_planned_mib) == 1
    assert [c.name for c in rows["small1"].checks][:2] == ["profile", "provision"]
    assert rows["small1"].checks[0].reason == "auto: 1x"


def test_a_host_no_profile_fits_fails_untouched_with_the_reason() -> None:
    row = unmatched_report("odd1", "no profile fits this host: 1x rtx-3060-12gb")
    assert row.verdict == "fail" and row.profile is None
    assert row.reasons == ["profile: no profile fits this host: 1x rtx-3060-12gb; left untouched"]


def test_report_md_has_a_profile_column_for_a_fleet() -> None:
    from coderig_deploy.reports import run_report
    from coderig_deploy.reports.markdown import parse_markdown_table, to_markdown

    groups = [ProfileGroup(load_profile("dual-4090"), [TargetHost(name="big1")], reasons={"big1": "auto: 2x"})]
    rows = host_reports([HostResult(host="big1", status="ok")], groups, [spec_for(groups[0].profile, groups[0].hosts)])
    table = parse_markdown_table(to_markdown(run_report([*rows, unmatched_report("odd1", "no profile fits")])))
    assert [(r["host"], r["profile (why)"], r["verdict"]) for r in table] == [
        ("big1", "dual-4090 (auto: 2x)", "pass"), ("odd1", "-", "fail")]
    assert table[1]["reason"] == "no profile: no profile fits"
