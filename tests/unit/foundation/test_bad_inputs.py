"""Every bad input of issue 8's findings 2, 7 and 8 exits 2 with one clear line and no traceback.

Each case runs the real command line through `main()` (the function the console
script calls), in-process, so the exit code is the one a user sees.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coderig_deploy.cli import main

BASE = "extends: budget-4070\ndescription: a user's profile\n"


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["coderig-deploy", *args])
    monkeypatch.delenv("CODERIG_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def profile(tmp_path: Path, text: str, name: str = "mine") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def assert_bad(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, (out, err)
    assert message in out + err, (out, err)
    assert "Traceback" not in out + err


# --- finding 2: the model store is confined -------------------------------------------------

@pytest.mark.parametrize(("store", "message"), [
    ("/etc/systemd/system", "/etc/systemd/system is inside the system tree /etc"),
    ("/.", "must be written in normal form, here '/'"),
    ("/usr/../etc", "must be written in normal form, here '/etc'"),
    ("/srv/ollama/", "must be written in normal form, here '/srv/ollama'"),
    ("//srv/ollama", "must be written in normal form, here '/srv/ollama'"),
    ("/", "String should match pattern"),
    ("/var", "/var is a shared system directory"),
    ("/home", "/home is a shared system directory"),
    ("/home/alice", "/home/alice is a user's home directory"),
    ("/var/lib/dpkg/info", "inside the system tree /var/lib/dpkg"),
    ("/boot/models", "inside the system tree /boot"),
    ("/lib64/x", "inside the system tree /lib64"),
    ("/tmp/models", "inside the system tree /tmp"),
    ("/usr/local/models", "inside the system tree /usr"),
    ("/root/models", "inside the system tree /root"),
    ("models", "String should match pattern"),
])
def test_models_dir_outside_system_trees(tmp_path, capsys, monkeypatch, store, message):
    path = profile(tmp_path, BASE + f"ollama: {{models_dir: '{store}'}}\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "mine.yaml:3: ollama.models_dir: ")
    assert message in out


@pytest.mark.parametrize("store", ["/var/lib/ollama", "/srv/ollama/models", "/data/models", "/home/alice/models",
                                   "/opt/ollama", "/usr/share/ollama/.ollama/models"])
def test_dedicated_store_paths_are_fine(tmp_path, capsys, monkeypatch, store):
    path = profile(tmp_path, BASE + f"ollama: {{models_dir: '{store}'}}\n")
    code, out, _ = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert code == 0, out


def test_models_dir_in_etc_stops_apply_before_anything_runs(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, BASE + "ollama: {models_dir: /etc/systemd/system}\n")
    code, out, err = cli(capsys, monkeypatch, "apply", "--profile", str(path), "localhost",
                         "--runs-dir", str(tmp_path / "runs"))
    assert_bad(code, out, err, "ollama.models_dir: /etc/systemd/system is inside the system tree /etc")
    assert not (tmp_path / "runs").exists()


# --- finding 7: tracebacks and rich markup ------------------------------------------------------

def test_non_utf8_profile(tmp_path, capsys, monkeypatch):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.encode() + "model: {num_ctx: 8192}  # caf\xe9\n".encode("latin-1"))
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "latin1.yaml:3: not UTF-8 text (byte 0xe9); save it as UTF-8")
    code, out, err = cli(capsys, monkeypatch, "profiles", "list", "--profiles-dir", str(tmp_path))
    assert_bad(code, out, err, "latin1.yaml:3: not UTF-8 text")
    code, out, err = cli(capsys, monkeypatch, "plan", "--profile", str(path))
    assert_bad(code, out, err, "latin1.yaml:3: not UTF-8 text")


@pytest.mark.parametrize("runs_dir", ["/sys/coderig-runs", "{tmp}/a-file/runs"])
def test_runs_dir_that_cannot_be_created(tmp_path, capsys, monkeypatch, runs_dir):
    (tmp_path / "a-file").write_text("")
    runs = runs_dir.format(tmp=tmp_path)
    code, out, err = cli(capsys, monkeypatch, "apply", "--profile", "budget-4070", "localhost", "--runs-dir", runs)
    assert_bad(code, out, err, f"--runs-dir {runs}: cannot create a run directory: ")
    assert len(err.strip().splitlines()) == 1


def test_runs_dir_on_a_read_only_file_system(tmp_path, capsys, monkeypatch):
    """A real read-only mount (we run as root, like the integration tests)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], check=True)
    try:
        code, out, err = cli(capsys, monkeypatch, "apply", "--profile", "budget-4070", "localhost",
                             "--runs-dir", str(mount / "runs"))
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert_bad(code, out, err, f"--runs-dir {mount / 'runs'}: cannot create a run directory: Read-only file system")


def test_yaml_nested_too_deeply(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, "description: " + "[" * 5000 + "]" * 5000 + "\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "mine.yaml: invalid YAML: nested too deeply for a profile")


def _alias_chain(levels: int, width: int = 9) -> str:
    """About 600 bytes at 9 levels of 9: width**levels values once every alias is written out."""
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return BASE + "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys, monkeypatch):
    """~600 bytes that expand to 9**9 values: walked node by node, validate would run for hours."""
    path = profile(tmp_path, _alias_chain(9))
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "mine.yaml: its aliases (*name) expand to more than 10000 YAML values")


def test_yaml_aliases_within_reason_are_read(tmp_path, capsys, monkeypatch):
    """An alias or two is YAML a person may write: it reaches validation (here: unknown keys a0, a1)."""
    path = profile(tmp_path, _alias_chain(1, width=3))
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert code == 2 and "a0" in out + err and "expand to more than" not in out + err, (out, err)


def test_render_output_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("")
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "localhost",
                         "-o", str(tmp_path / "a-file" / "rig"))
    assert_bad(code, out, err, "cannot write the project: Not a directory")


@pytest.mark.parametrize(("field", "message"), [
    ("description: " + "x" * 400, "mine.yaml:2: description: String should have at most 300 characters"),
    ('description: "tab\\there"', "mine.yaml:2: description: must be one line of printable text"),
    ('description: "two\\nlines"', "mine.yaml:2: description: must be one line of printable text"),
    ('name: "{{ lookup(\'pipe\', \'id\') }}"\ndescription: x',
     "mine.yaml:2: name: \"{{ lookup('pipe', 'id') }}\" is not a valid profile name"),
    ('name: "budget\\n"\ndescription: x', "mine.yaml:2: name: 'budget\\n' is not a valid profile name"),
])
def test_profile_text_that_the_project_would_refuse_fails_validate_and_render(
        tmp_path, capsys, monkeypatch, field, message):
    path = profile(tmp_path, f"extends: budget-4070\n{field}\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, message)
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", str(path), "localhost", "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, message)
    assert "pydantic" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ("render", "--profile", "budget[/x]", "localhost", "-o", "/tmp/never"),
    ("plan", "--profile", "budget[/x]"),
    ("profiles", "show", "budget[/bold]"),
])
def test_brackets_in_user_text_are_not_rich_markup(capsys, monkeypatch, args):
    code, out, err = cli(capsys, monkeypatch, *args)
    assert_bad(code, out, err, args[2])


def test_unknown_gpu_with_markup_is_printed_as_typed(capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "plan", "--model", "qwen2.5-coder:14b", "--gpu", "rtx[/red]x",
                         "--ctx", "4096")
    assert_bad(code, out, err, "unknown GPU 'rtx[/red]x'")


def test_pattern_errors_show_the_pattern_faithfully(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, BASE + "model_registry: 'mirror lan:5000'\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, r"String should match pattern '^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$'")
    path = profile(tmp_path, BASE + "ollama: {keep_alive: 'forever'}\n")
    code, out, err = cli(capsys, monkeypatch, "apply", "--profile", str(path), "localhost")
    assert_bad(code, out, err, "String should match pattern '^-?[0-9]{1,9}(ns|us|ms|s|m|h)?$'")


def test_a_profile_error_names_the_file_once_per_problem(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, BASE + "hardware: {count: 0}\nollama: {models_dir: /etc}\n")
    code, out, _ = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 2, out
    assert all(line.count(str(path)) == 1 for line in lines), out
    assert lines[0].startswith(f"invalid {path}:3: hardware.count: ")


def test_no_traceback_from_the_console_script(tmp_path):
    """The installed entry point (a subprocess) prints the same single line."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"description: \xff\n")
    r = subprocess.run([sys.executable, "-m", "coderig_deploy", "plan", "--profile", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"error: {path}:1: not UTF-8 text (byte 0xff); save it as UTF-8"


# --- finding 8: validation gaps -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("hardware: {count: 0}", "mine.yaml:3: hardware.count: Input should be greater than or equal to 1"),
    ("hardware: {count: 17}", "hardware.count: Input should be less than or equal to 16"),
    ("hardware: {min_vram_mib: 99999999}", "hardware.min_vram_mib: Input should be less than or equal to 1048576"),
    ("hardware: {min_vram_mib: 20000}", "min_vram_mib 20000 is more than a rtx-4070 has (12282 MiB)"),
    ("hardware: {min_ram_gib: 9999999}", "hardware.min_ram_gib: Input should be less than or equal to 65536"),
    ("hardware: {min_disk_gib: 99999999}", "hardware.min_disk_gib: Input should be less than or equal to 1048576"),
    ("driver: {branch: 100000}", "driver.branch: Input should be less than or equal to 9999"),
    ("model: {num_ctx: 99999999}", "model.num_ctx: Input should be less than or equal to 1048576"),
    ("ollama: {keep_alive: '9999999999999999m'}", "ollama.keep_alive: String should match pattern"),
    ("ollama: {num_parallel: 65}", "ollama.num_parallel: Input should be less than or equal to 64"),
    ("expect: {decode_tok_s: .inf}", "expect.decode_tok_s: Input should be a finite number"),
    ("expect: {tolerance_tok_s: .nan}", "expect.tolerance_tok_s: Input should be a finite number"),
    ("expect: {decode_tok_s: 1000000}", "expect.decode_tok_s: Input should be less than or equal to 100000"),
    ("expect: {decode_tok_s: 40, tolerance_tok_s: 80}", "expect: tolerance_tok_s 80 is not below decode_tok_s 40: "
     "the decode check could never fail"),
    ("expect: {decode_tok_s: 40, tolerance_tok_s: 40}", "tolerance_tok_s 40 is not below decode_tok_s 40"),
    ("model_registry: \"mirror:5000\\n\"", "model_registry: String should match pattern"),
    ("ollama: {version: \"0.33.0\\n\"}", "ollama.version: String should match pattern"),
])
def test_numbers_are_bounded_and_patterns_are_full_matches(tmp_path, capsys, monkeypatch, text, message):
    path = profile(tmp_path, BASE + text + "\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, message)


def test_duplicate_keys_name_both_lines(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, BASE + "model:\n  num_ctx: 8192\n  num_ctx: 4096\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "mine.yaml:5: duplicate key 'num_ctx' (first written on line 4)")
    path = profile(tmp_path, BASE + "description: again\n")
    code, out, err = cli(capsys, monkeypatch, "plan", "--profile", str(path))
    assert_bad(code, out, err, "mine.yaml:3: duplicate key 'description' (first written on line 2)")


def test_host_argument_with_trailing_newline(tmp_path, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "ws1\n", "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, "cannot read host 'ws1\\n'")


def test_ini_become_false_renders_false(tmp_path, capsys, monkeypatch):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.1 ansible_user=root ansible_become=false\n"
                         "ws2 ansible_host=10.0.0.2 ansible_user=ops ansible_become=no\n"
                         "ws3 ansible_host=10.0.0.3 ansible_user=root ansible_become=True\n")
    code, out, _ = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "-i", str(inventory),
                       "-o", str(tmp_path / "rig"))
    assert code == 0, out
    hosts = yaml.safe_load((tmp_path / "rig" / "inventory.yml").read_text())["all"]["children"]
    flat = {name: v for group in hosts.values() for name, v in group.get("hosts", {}).items()}
    assert [bool(flat[h].get("ansible_become")) for h in ("ws1", "ws2", "ws3")] == [False, False, True]
    inventory.write_text("ws1 ansible_host=10.0.0.1 ansible_become=maybe\n")
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "-i", str(inventory),
                         "-o", str(tmp_path / "rig2"))
    assert_bad(code, out, err, "host 'ws1': ansible_become='maybe' is not a boolean")


# --- the newcomer items -----------------------------------------------------------------------

def test_version(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "--version")
    assert code == 0 and out.strip() == "coderig-deploy 0.1.0"


def test_gpus_and_models_list_the_catalog(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "gpus", "--json")
    gpus = {g["slug"]: g for g in json.loads(out)}
    assert code == 0 and gpus["rtx-4090"]["vram_mib"] == 24564 and gpus["rtx-4090"]["bandwidth_gbs"] > 900
    assert gpus["rtx-4070"]["name"] == "NVIDIA GeForce RTX 4070" and gpus["h200"]["sm_count"] == 132
    # A laptop part's power limit is a range (its maker's choice); a desktop card's is one figure.
    assert (gpus["rtx-4090-laptop"]["board_power_min_w"], gpus["rtx-4090-laptop"]["board_power_w"]) == (80, 175)
    assert gpus["rtx-4090"]["board_power_min_w"] == gpus["rtx-4090"]["board_power_w"] == 450
    code, out, _ = cli(capsys, monkeypatch, "models", "--json")
    data = json.loads(out)
    assert code == 0 and "qwen2.5-coder:32b" in {m["tag"] for m in data["models"]} and "q4_K_M" in data["quantizations"]
    code, out, _ = cli(capsys, monkeypatch, "gpus")
    assert code == 0 and "rtx-4070" in out and max(len(line.rstrip()) for line in out.splitlines()) <= 80
    assert re.search(r"^rtx-4090-laptop .* 80-175 ", out, re.MULTILINE)


@pytest.mark.parametrize(("args", "message"), [
    (("--model", "qwen2.5-codr:32b", "--gpu", "rtx-4090"), "`coderig-deploy models` lists every size"),
    (("--model", "qwen2.5-coder:32b", "--gpu", "rtx4090"), "Did you mean rtx-4090 or"),
    (("--model", "qwen2.5-coder:31b", "--gpu", "rtx-4090"), "unknown size '31b'"),
])
def test_plan_reports_a_bad_name_before_asking_for_ctx(capsys, monkeypatch, args, message):
    code, out, err = cli(capsys, monkeypatch, "plan", *args)
    assert_bad(code, out, err, message)
    assert "--ctx" not in err


def test_unknown_gpu_points_at_the_gpus_command(capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "plan", "--profile", "budget-4070", "--gpu", "rtx-9999")
    assert_bad(code, out, err, "`coderig-deploy gpus` lists the known slugs")


@pytest.mark.parametrize("command", [("plan",), ("apply",), ("render",), ("profiles", "validate"), ("verify",)])
def test_help_shows_readable_types(capsys, monkeypatch, command):
    code, out, _ = cli(capsys, monkeypatch, *command, "--help")
    assert code == 0
    assert "list[" not in out and "<bool>" not in out, out
    if command[0] in ("apply", "render", "verify"):  # square brackets in help are text, not markup
        assert "[user@]host[:port]" in out or "[user@]address[:port]" in out


@pytest.mark.parametrize(("args", "message"), [
    (("--ctx", "99999999999"), "Invalid value for '--ctx': Input should be less than or equal to 1048576"),
    (("--ctx", "100"), "--ctx 100 is too small: use at least 256 tokens"),
    (("--parallel", "100"), "Invalid value for '--parallel': Input should be less than or equal to 64"),
    (("--depth", "-5"), "Invalid value for '--depth': Input should be greater than or equal to 0"),
    (("--ram-bandwidth", "-1"), "Invalid value for '--ram-bandwidth': Input should be greater than or equal to 1"),
])
def test_plan_numbers_are_bounded(capsys, monkeypatch, args, message):
    code, out, err = cli(capsys, monkeypatch, "plan", "--profile", "budget-4070", *args)
    assert_bad(code, out, err, message)


def test_a_description_with_brackets_is_shown_as_written(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, 'extends: budget-4070\ndescription: "[/x] [bold]b[/bold] \\\\[a-z] [red]"\n')
    code, out, _ = cli(capsys, monkeypatch, "profiles", "show", str(path))
    assert code == 0 and out.splitlines()[0] == r"mine: [/x] [bold]b[/bold] \[a-z] [red]"


@pytest.mark.parametrize("command", [["plan", "--model", "llama3.1:70b-instruct-fp16", "--ctx", "4096"],
                                     ["recommend", "--write-profile", "big.yaml"]])
def test_more_gpus_than_llama_cpp_uses_are_refused(tmp_path, capsys, monkeypatch, command):
    """GGML_CUDA_MAX_DEVICES is 16: a plan for 17 cards would place layers on cards no process sees."""
    monkeypatch.chdir(tmp_path)
    gpus = [arg for _ in range(17) for arg in ("--gpu", "rtx-3060-12gb")]
    code, out, err = cli(capsys, monkeypatch, *command, *gpus)
    assert_bad(code, out, err, "17 GPUs: llama.cpp's CUDA backend, which Ollama runs models on, uses at most 16")
    assert not (tmp_path / "big.yaml").exists()


def test_sixteen_gpus_are_planned(capsys, monkeypatch):
    gpus = [arg for _ in range(16) for arg in ("--gpu", "rtx-3060-12gb")]
    code, out, err = cli(capsys, monkeypatch, "plan", "--model", "llama3.1:70b-instruct-fp16", "--ctx", "4096",
                         "--json", *gpus)
    assert code == 0, err
    assert len(json.loads(out)["gpus"]) == 16


def test_depth_zero_is_planned_at_zero_and_past_the_context_says_so(capsys, monkeypatch):
    base = ("plan", "--model", "qwen2.5-coder:7b", "--gpu", "rtx-4090", "--ctx", "8192", "--json", "--depth")
    plans = {}
    for depth in ("0", "512", "100000"):
        code, out, err = cli(capsys, monkeypatch, *base, depth)
        assert code == 0, err
        plans[depth] = json.loads(out)
    assert plans["0"]["decode_depth"] == 0 and plans["512"]["decode_depth"] == 512
    assert plans["0"]["decode_tok_s"] > plans["512"]["decode_tok_s"] > plans["100000"]["decode_tok_s"]
    assert plans["100000"]["decode_depth"] == 8192
    assert any("depth 100000 is past the 8192-token context" in n for n in plans["100000"]["notes"])
    assert not any("past the" in n for n in plans["0"]["notes"])


# --- model names, bind addresses and descriptions (review of render) ----------------------------

@pytest.mark.parametrize("variant", ["coderig/../../../etc:x", "coderig/./x:32k", "coderig/x:..",
                                     "coderig/x:."])
def test_a_dot_segment_in_a_model_variant_is_refused(tmp_path, capsys, monkeypatch, variant):
    path = profile(tmp_path, BASE + f"model: {{variant: '{variant}'}}\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "mine.yaml:3: model.variant: ")
    assert "'.' or '..'" in out + err


@pytest.mark.parametrize("variant", ["coderig/qwen2.5-coder-7b:16k", "coderig/a...b:x.y"])
def test_dots_inside_a_model_name_are_fine(tmp_path, capsys, monkeypatch, variant):
    path = profile(tmp_path, BASE + f"model: {{variant: '{variant}'}}\n")
    code, out, _ = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert code == 0, out


@pytest.mark.parametrize("host", ["::1:11434", "::1", "fd00::5:11434", "[::1:11434", "::1]:11434"])
def test_an_ipv6_bind_address_without_brackets_is_refused(tmp_path, capsys, monkeypatch, host):
    # Ollama reads OLLAMA_HOST=::1:11434 as an address, not as ::1 port 11434; expose does not help.
    path = profile(tmp_path, BASE + f"ollama: {{host: '{host}', expose: true}}\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, "mine.yaml:3: ollama.host: ")
    assert "[::1]:11434" in out + err


@pytest.mark.parametrize(("host", "exposed"), [("[::1]:11434", False), ("127.0.0.1:11434", False),
                                               ("localhost:11434", False), ("[::]:11434", True),
                                               ("[fd00::5]:11434", True), ("ws1.lab:11434", True)])
def test_bind_addresses_written_right_are_fine(tmp_path, capsys, monkeypatch, host, exposed):
    path = profile(tmp_path, BASE + f"ollama: {{host: '{host}', expose: {str(exposed).lower()}}}\n")
    code, out, _ = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert code == 0, out


def test_a_bidi_override_in_the_description_is_escaped_in_the_rendered_readme(tmp_path, capsys, monkeypatch):
    # Shown escaped as in group_vars and `profiles show`: it would reorder what a reader of the README sees.
    path = profile(tmp_path, BASE.replace("a user's profile", '"rig \\u202eevil\\u202c ok"'))
    code, out, _ = cli(capsys, monkeypatch, "render", "--profile", str(path), "ws1", "-o", str(tmp_path / "rig"))
    assert code == 0, out
    readme = (tmp_path / "rig" / "README.md").read_text()
    assert "\u202e" not in readme and "\u202c" not in readme
    assert "rig \\u202eevil\\u202c ok" in readme


def test_profiles_list_shows_the_good_profiles_beside_a_broken_one(tmp_path, capsys, monkeypatch):
    """One bad file in a team's --profiles-dir is named (exit 2) and hides none of the others."""
    profile(tmp_path, BASE, name="good")
    profile(tmp_path, "extends: budget-4070\ndescription: [broken\n", name="bad")
    code, out, err = cli(capsys, monkeypatch, "profiles", "list", "--profiles-dir", str(tmp_path), "--json")
    assert code == 2
    names = [r["name"] for r in json.loads(out)]
    assert "good" in names and "budget-4070" in names and "bad" not in names
    assert f"{tmp_path / 'bad.yaml'}:3: invalid YAML" in err and "Traceback" not in err


def test_an_extends_chain_too_long_is_named_as_such(tmp_path, capsys, monkeypatch):
    """40 files each extending the one before: said as a chain too long (a longer one ran into "YAML nested
    too deeply"), while 20 links still load."""
    profile(tmp_path, BASE, name="c0")
    for i in range(1, 40):
        profile(tmp_path, f"extends: c{i - 1}\ndescription: link {i}\n", name=f"c{i}")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(tmp_path / "c39.yaml"),
                         "--profiles-dir", str(tmp_path))
    assert_bad(code, out, err, "c39.yaml: `extends` goes 32 profiles deep (c39 -> ... -> c7)")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(tmp_path / "c20.yaml"),
                         "--profiles-dir", str(tmp_path))
    assert code == 0, (out, err)
