"""Text from hosts and files is printed, never obeyed: a control character a host or a shared file carries (an
escape sequence that clears the screen, retitles the window or recolours what follows, a bidirectional override)
reaches the operator's terminal as its visible escape, in tables, notes and calibration files alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from coderig_deploy.bench.checks import Check
from coderig_deploy.cli.apply import _cell, _log_line
from coderig_deploy.cli.output import plain, text
from coderig_deploy.cli.plan import render_plan
from coderig_deploy.cli.report import render_run
from coderig_deploy.errors import UserInputError
from coderig_deploy.planner import make_plan
from coderig_deploy.probe import measured
from coderig_deploy.probe.measured import MeasuredRow
from coderig_deploy.profiles import load_profile
from coderig_deploy.progress import ProgressLine
from coderig_deploy.reports import host_report, run_report
from coderig_deploy.safetext import safe
from coderig_deploy.smoke import expectations

# OSC 0 (window title) ended by BEL, CSI 2J (clear screen), a one-byte C1 CSI, a right-to-left override, a CR
HOSTILE = "gpu\x1b]0;owned\x07 \x1b[2Jcleared\x9b31m red\u202eevil\r"
SHOWN = "gpu\\x1b]0;owned\\x07 \\x1b[2Jcleared\\x9b31m red\\u202eevil\\x0d"


def _draw(draw) -> str:  # type: ignore[no-untyped-def]
    console = Console(width=200, record=True, color_system=None)
    draw(console)
    return console.export_text()


def test_safe_shows_what_would_drive_a_terminal_and_keeps_the_rest() -> None:
    assert safe(HOSTILE) == SHOWN
    kept = "tab\there\nnext line: é — ✓ 日本 [bold]x[/] 100%"
    assert safe(kept) == kept
    assert safe("".join(map(chr, range(0x20)))).count("\\x") == 30  # all C0 controls but tab and newline


@pytest.mark.parametrize("make", [lambda s: plain(s), lambda s: plain(("x ", "bold"), (s, "red")), lambda s: text(s),
                                  lambda s: _cell(s), lambda s: _log_line(ProgressLine(s, "failed", "models", s, 1.0,
                                                                                       5, 1, s))])
def test_every_way_the_cli_prints_host_text_escapes_it(make) -> None:  # type: ignore[no-untyped-def]
    out = _draw(lambda c: c.print(make(HOSTILE)))
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    assert "\\x1b[2Jcleared" in out


def test_a_hostile_check_detail_in_a_report_is_shown_escaped() -> None:
    exp = expectations(load_profile("dual-4090"))
    checks = [Check("ollama_version", "fail", f"Ollama answered version {HOSTILE}")]
    report = run_report([host_report(f"ws{HOSTILE}", None, exp, checks)], "dual-4090")
    out = _draw(lambda c: render_run(c, report, summary=True, all_checks=True))
    assert "\x1b" not in out and "\\x1b[2Jcleared" in out


def _row(**over: object) -> MeasuredRow:
    fields = dict(kind="speed", model="qwen2.5-coder-1.5b", quant="Q4_K_M", gpus=("rtx-4090",), ctx=4096,
                  kv_cache="f16", flash_attn=True, engine="Ollama 0.33.0, num_parallel 1", value=211.5,
                  prefill_tok_s=9876.5, depth=556, prompt_tokens=492, source="coderig-deploy probe on ws1")
    return MeasuredRow(**{**fields, **over})  # type: ignore[arg-type]


def test_a_calibration_note_quoting_host_text_is_printed_escaped() -> None:
    plan = make_plan("qwen2.5-coder:1.5b", ["rtx-4090"], 4096)
    out = measured.apply(plan, [_row(source=f"probe on {HOSTILE}")], "qwen2.5-coder-1.5b",
                         lambda prompt, depth: make_plan("qwen2.5-coder:1.5b", ["rtx-4090"], 4096,
                                                         prompt_tokens=prompt, depth=depth))
    assert any(HOSTILE in n for n in out.notes)
    shown = _draw(lambda c: render_plan(c, out))
    assert "\x1b" not in shown and f"probe on {SHOWN}" in shown


def test_a_probe_writes_a_hosts_text_as_escapes_and_reads_it_back(tmp_path: Path) -> None:
    # A host's Ollama answered a version with escape sequences: the file keeps them visible, and reads back.
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv([_row(engine=f"Ollama {HOSTILE}")]))
    assert "\x1b" not in path.read_text() and f"Ollama {SHOWN}" in path.read_text()
    (row,) = measured.read_rows(path)
    assert row.engine == f"Ollama {SHOWN}" and row.value == 211.5


def test_a_calibration_file_carrying_control_characters_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv([_row()]).replace("probe on ws1", "probe on ws1\x1b[2J"))
    with pytest.raises(UserInputError) as caught:
        measured.read_rows(path)
    message = str(caught.value)
    assert f"{path}:4: column source holds a control character" in message and "ws1\\x1b[2J'" in message
    assert "\x1b" not in message and "\n" not in message


def test_report_files_keep_host_text_visible_and_junit_stays_parseable() -> None:
    import xml.etree.ElementTree as ET

    from coderig_deploy.reports.junit import to_junit
    from coderig_deploy.reports.markdown import to_markdown

    exp = expectations(load_profile("dual-4090"))
    # a failing command's coloured output is the common case, not only a hostile host
    checks = [Check("ollama_version", "fail", f"apt said \x1b[31mE: broken\x1b[0m; {HOSTILE}"),
              Check("bind_address", "pass", "ok")]
    report = run_report([host_report("ws1", None, exp, checks)], "dual-4090")
    markdown, junit = to_markdown(report), to_junit(report)
    for doc in (markdown, junit):
        assert "\x1b" not in doc and "\x9b" not in doc and "\u202e" not in doc
        assert "apt said \\x1b[31mE: broken\\x1b[0m" in doc
    failure = ET.fromstring(junit.split("?>", 1)[1]).find(".//failure")
    assert failure is not None and "E: broken" in (failure.text or "")


def test_an_error_carrying_host_text_is_printed_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    from coderig_deploy.cli import _print_error

    _print_error(f"ws1: Ollama answered {HOSTILE}")
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2Jcleared" in err


def test_a_calibration_row_keeps_tabs_newlines_and_quotes_of_host_text_on_its_line(tmp_path: Path) -> None:
    # csv quoting made such a row unreadable (a tab or newline) or changed it (quotes doubled)
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv([_row(engine='Ollama "0.3"\n\tx\r\n')]))
    (row,) = measured.read_rows(path)
    assert row.engine == 'Ollama "0.3"\\x0a\\x09x\\x0a' and row.value == 211.5


def test_junit_attributes_hold_no_raw_control_characters() -> None:
    import xml.etree.ElementTree as ET

    from coderig_deploy.reports.junit import to_junit

    exp = expectations(load_profile("dual-4090"))
    report = run_report([host_report("ws1", None, exp, [Check("ollama_version", "fail", "bad\rline\x1b[0m")])],
                        "dual-4090")
    junit = to_junit(report)
    assert "&#13;" not in junit and "\x1b" not in junit
    failure = ET.fromstring(junit.split("?>", 1)[1]).find(".//failure")
    assert failure is not None and failure.get("message") == "bad\\x0dline\\x1b[0m"


def test_the_cli_builds_no_rich_text_but_through_the_safe_constructors() -> None:
    # rich.text.Text(...) prints control characters as they are; cli/output.py's plain() and text() do not.
    import re

    cli = Path(__file__).resolve().parents[2] / "coderig_deploy" / "cli"
    offenders = [f"{path.name}:{n}" for path in sorted(cli.glob("*.py")) if path.name != "output.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"(?<![\w.])Text(\(|\.assemble\()", line)]
    assert offenders == []
