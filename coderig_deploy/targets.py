"""Which hosts a run targets: host arguments, an Ansible inventory, or the sandbox lab.

    [user@]host[:port]   an SSH host (checked against known_hosts)
    localhost            this machine, through Ansible's local connection
    sandbox              every host of the running sandbox lab (or --sandbox)

An inventory (-i) is read with Ansible's own inventory loader, so INI, YAML and
directories work; only connection variables are taken from it, as Ansible resolves them
for the host (group vars and group_vars/ and host_vars/ files included). Secrets such as
ansible_become_password are not among them: they never reach the rendered project.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from coderig_deploy.errors import EnvironmentProblem, UserInputError
from coderig_deploy.forks import auto_forks
from coderig_deploy.profiles import SHA256_PIN, Profile, port_problem
from coderig_deploy.project import RenderOptions, TargetHost

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
SANDBOX = "sandbox"
_ARG = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:@\s]+)(?::(?P<port>[0-9]{1,5}))?$")


def _target(**fields: object) -> TargetHost:
    try:
        return TargetHost.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise UserInputError(f"host {fields.get('name')!r}: {problems}") from None


def from_argument(text: str, user: str | None = None, key: Path | None = None) -> TargetHost:
    """One host argument as a TargetHost."""
    if text in LOCAL_NAMES:  # this machine: sudo unless coderig already runs as root
        return _target(name="localhost", connection="local", become=os.geteuid() != 0)
    match = _ARG.fullmatch(text)
    if not match:
        raise UserInputError(f"cannot read host {text!r}: use [user@]host[:port], an IPv6 address in "
                             "brackets ([fd00::5] or [fd00::5]:22)")
    problem = port_problem(int(match["port"])) if match["port"] else None
    if problem:
        raise UserInputError(f"host {text!r}: {problem}")
    login = match["user"] or user
    return _target(name=match["host"].strip("[]"), port=int(match["port"]) if match["port"] else None,
                   user=login, key_file=str(key.resolve()) if key else None,
                   become=bool(login and login != "root"))


def in_brackets(address: str) -> str:
    """`address` as it stands before a port or in a URL: an IPv6 one in brackets."""
    return f"[{address}]" if ":" in address else address


def as_argument(target: TargetHost) -> str:
    """The host argument from_argument reads back as `target`'s SSH end: [user@]address[:port]."""
    login = f"{target.user}@" if target.user else ""
    port = f":{target.port}" if target.port is not None else ""
    return f"{login}{in_brackets(target.address or target.name)}{port}"


def from_inventory(path: Path, user: str | None = None, key: Path | None = None) -> list[TargetHost]:
    """Every host of an Ansible inventory, with its connection variables."""
    hosts = []
    for name, v in _resolved_vars(path):
        _refuse_templates(name, v)
        login = v.get("ansible_user") or user
        local = v.get("ansible_connection") == "local" or name in LOCAL_NAMES
        key_file = _home(v.get("ansible_ssh_private_key_file")) or (str(key.resolve()) if key else None)
        python = v.get("ansible_python_interpreter")
        hosts.append(_target(
            name=name, connection="local" if local else "ssh",
            address=None if local else v.get("ansible_host"), port=v.get("ansible_port"),
            user=None if local else login, key_file=None if local else key_file,
            become=(bool(login and login != "root" and not local) if v.get("ansible_become") is None
                    else _flag(name, "ansible_become", v["ansible_become"])),
            # Ansible's interpreter discovery ("auto", "auto_silent", ...) is what the rendered project does anyway
            python=None if str(python or "").startswith("auto") else python,
            known_hosts=None if local else _home(_known_hosts_file(name, v)),
        ))
    if not hosts:
        raise UserInputError(f"{path}: the inventory holds no hosts")
    return hosts


# The connection variables from_inventory reads; a templated one ({{ ... }}) would need Ansible's templating
# of the whole inventory, with lookups that run commands, so it is refused with what to do instead.
_CONNECTION_VARS = ("ansible_host", "ansible_port", "ansible_user", "ansible_connection",
                    "ansible_ssh_private_key_file", "ansible_become", "ansible_python_interpreter",
                    "ansible_ssh_common_args", "ansible_ssh_extra_args")


def _refuse_templates(host: str, v: dict[str, Any]) -> None:
    for var in _CONNECTION_VARS:
        if "{{" in str(v.get(var, "")) or "{%" in str(v.get(var, "")):
            raise UserInputError(f"host {host!r}: {var} is a template ({v[var]!r}); coderig-deploy reads "
                                 "inventories untemplated: write the value, or give it with --user / --key")


def _home(path: object) -> str | None:
    """A path as Ansible reads it: `~` is the controller user's home."""
    return os.path.expanduser(str(path)) if path else None


def inventory_profiles(path: Path) -> dict[str, str]:
    """`coderig_profile` of each inventory host that has one (set per host or per group,
    Ansible's precedence): a profile name, a profile file, or `auto`."""
    found = {}
    for name, v in _resolved_vars(path):
        value = v.get("coderig_profile")
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise UserInputError(f"{path}: host {name!r}: coderig_profile must be a profile name "
                                 f"or auto, not {value!r}")
        found[name] = value.strip()
    return found


def _resolved_vars(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Each inventory host (by name) with the variables Ansible itself gives it: inline group
    vars, group_vars/ and host_vars/ files and host vars, in Ansible's precedence. Host vars
    alone (Host.get_vars) would drop a port or user set on a group. Values stay untemplated,
    so a Jinja expression reaches validation as text and is refused there. The vars files are
    the inventory's own: the loader's base is the inventory's directory, not the one coderig-deploy
    runs in (whose group_vars/ would otherwise apply to any inventory)."""
    if not path.exists():
        raise UserInputError(f"{path}: inventory not found")
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    loader.set_basedir(str(path.resolve() if path.is_dir() else path.resolve().parent))
    try:
        manager = InventoryManager(loader=loader, sources=[str(path)])
        variables = VariableManager(loader=loader, inventory=manager)
        return [(host.name, variables.get_vars(host=host, include_hostvars=False))
                for host in sorted(manager.get_hosts(), key=lambda h: h.name)]
    except AnsibleError as exc:  # a broken group_vars/ or host_vars/ file: the user's input
        raise UserInputError(f"{path}: {' '.join(str(exc.message).split())}") from None


def _flag(host: str, name: str, value: object) -> bool:
    """An inventory boolean the way Ansible reads it: INI gives the string "false", which bool() calls true."""
    from ansible.module_utils.parsing.convert_bool import boolean

    try:
        return boolean(value, strict=True)
    except TypeError:
        raise UserInputError(f"host {host!r}: {name}={value!r} is not a boolean (true/false, yes/no, 1/0)") from None


# OpenSSH options whose loss changes where or as whom a connection goes, or which key it must present: the
# rendered project writes its own SSH options (the known_hosts file, strict host key checking), so an
# inventory that sets one of these would reach another host or none. Others (LogLevel, ServerAliveInterval,
# ForwardAgent...) are left out of the rendered project without changing which host answers.
_SSH_OPTIONS_REFUSED = {"proxyjump", "proxycommand", "hostname", "port", "user", "identityfile", "certificatefile",
                        "identityagent", "hostkeyalias", "globalknownhostsfile", "-j", "-p", "-l", "-i", "-f", "-w"}


def _ssh_options(host: str, v: dict[str, Any]) -> list[str]:
    """The options of the host's ansible_ssh_common_args and ansible_ssh_extra_args, once none is one the
    rendered project would drop to another end (ProxyJump, -J, IdentityFile, ...): such a host would be found
    unreachable or with a wrong host key, so it is refused here, by option."""
    options = []
    for var in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        try:
            found = _options(shlex.split(str(v.get(var) or "")))
        except ValueError as exc:
            raise UserInputError(f"host {host!r}: {var}: {exc}") from None
        dropped = [o for o in found if o.split("=")[0].lower() in _SSH_OPTIONS_REFUSED
                   and o.lower() != "globalknownhostsfile=/dev/null"]
        if dropped:
            raise UserInputError(f"host {host!r}: {var} sets {', '.join(dropped)}, which the rendered project does "
                                 "not carry: it writes its own SSH options, so a host behind a jump host or proxy, "
                                 "or reached under another address, user, port, key or known_hosts file than "
                                 "ansible_host, ansible_user, ansible_port, ansible_ssh_private_key_file and "
                                 "UserKnownHostsFile give, is not supported")
        options += found
    return options


def _options(words: list[str]) -> list[str]:
    """OpenSSH command-line words as options: `-o Key=Value` and `-o Key Value` as Key=Value, -C as
    Compression, other flags and words (-J bastion) as written."""
    out, i = [], 0
    while i < len(words):
        word = words[i]
        if word == "-C":
            out.append("Compression=yes")
            i += 1
        elif word == "-o" and i + 1 < len(words):
            out.append(words[i + 1].replace(" ", "=", 1) if "=" not in words[i + 1] else words[i + 1])
            i += 2
        elif word.startswith("-o") and len(word) > 2:
            out.append(word[2:])
            i += 1
        else:
            out.append(word)
            i += 1
    return out


def _known_hosts_file(host: str, v: dict[str, Any]) -> str | None:
    """The UserKnownHostsFile the host's SSH options name, if any (Key=Value or Key Value, either variable)."""
    files = [o.split("=", 1)[1] for o in _ssh_options(host, v) if o.split("=")[0].lower() == "userknownhostsfile"]
    return files[-1] if files else None


def from_sandbox(names: list[str] | None = None) -> tuple[list[TargetHost], dict[str, str]]:
    """The running lab's hosts (all, or those named), its service URLs and the lab's home
    (`lab_home`), which vouches for the digests of what the lab serves."""
    from coderig_deploy.sandbox import Lab, services

    lab = Lab()
    hosts = lab.hosts()
    if not hosts:
        raise EnvironmentProblem(f"no sandbox hosts in {lab.home}: run `coderig-deploy sandbox up` first")
    known = {h.name: h for h in hosts}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UserInputError(f"no sandbox host named {', '.join(unknown)} (have: {', '.join(known)})")
    chosen = [known[n] for n in names] if names else hosts
    targets = [_target(name=h.name, address=h.ip, user="root", key_file=str(lab.key),
                       known_hosts=str(lab.known_hosts), python="/usr/bin/python3") for h in chosen]
    return targets, {**services.urls(lab), "lab_home": str(lab.home)}


def sandbox_pins(lab_home: str, profile: Profile, archive_is_lab: bool, registry_is_lab: bool,
                 ) -> tuple[str | None, str | None]:
    """The lab's pins for the archive and the model manifest it serves (it built both)."""
    from coderig_deploy.sandbox import Lab, services

    lab = Lab(Path(lab_home))
    archive = services.archive_pin(lab, profile.ollama.version) if archive_is_lab else None
    manifest = services.manifest_pin(profile.model.tag) if registry_is_lab else None
    return archive, manifest


def _sandbox_extra_pins(profile: Profile) -> dict[str, str]:
    """The lab's pins for the models served beside the main one (profile `models`)."""
    from coderig_deploy.sandbox import services

    return {ref.tag: services.manifest_pin(ref.tag) for ref in profile.models}
def sandbox_container(urls: dict[str, str], registry: str | None) -> dict[str, Any]:
    """runtime docker on sandbox hosts: the lab's simulator image, apt repository and key."""
    if "ollama_image" not in urls:
        return {}
    from coderig_deploy.sandbox import Lab, services

    image_registry = urls["ollama_image"].split("/", 1)[0]
    return {"ollama_image": urls["ollama_image"], "container_repo_url": urls.get("container_repo_url"),
            "container_repo_key_fingerprint": services.apt_key_pin(Lab(Path(urls["lab_home"]))),
            "container_insecure_registries": sorted({image_registry, registry or image_registry})}


@dataclass(frozen=True)
class TargetOptions:
    """The command line's say on hosts and on what the profile leaves to the site."""

    hosts: list[str] = field(default_factory=list)
    inventory: Path | None = None
    user: str | None = None
    key: Path | None = None
    sandbox: bool = False
    forks: int | None = None  # None: forks.auto_forks for the hosts resolved
    allow_reboot: bool = False
    model_registry: str | None = None
    ollama_url: str | None = None
    ollama_sha256: str | None = None
    model_digest: str | None = None
    allow_unpinned: bool = False


def resolve_targets(profile: Profile, opts: TargetOptions) -> tuple[list[TargetHost], RenderOptions]:
    """The hosts to run on and the render options (sandbox defaults filled in)."""
    if opts.key is not None and not opts.key.is_file():
        raise UserInputError(f"--key {opts.key}: no such file")
    for option, value in (("--ollama-sha256", opts.ollama_sha256), ("--model-digest", opts.model_digest)):
        if value is not None and not re.fullmatch(SHA256_PIN, value):
            raise UserInputError(f"{option} {value!r}: a pin is sha256:<64 lowercase hex digits>")
    registry, archive = opts.model_registry, opts.ollama_url
    archive_pin, manifest_pin = opts.ollama_sha256, opts.model_digest
    policy: Literal["refuse", "warn"] = "refuse"
    container: dict[str, Any] = {}
    if opts.sandbox or SANDBOX in opts.hosts:
        targets, urls = from_sandbox([h for h in opts.hosts if h != SANDBOX] or None)
        registry = registry or urls.get("model_registry")
        if archive is None and "ollama_download_base" in urls:
            archive = f"{urls['ollama_download_base']}/v{profile.ollama.version}/ollama-linux-amd64.tar.zst"
        # The lab built the archive and the models it serves, so it knows their digests;
        # they stand in for the real release's, so they override the profile's pins.
        lab_archive, lab_manifest = sandbox_pins(
            urls["lab_home"], profile, archive_is_lab=opts.ollama_url is None,
            registry_is_lab=registry == urls.get("model_registry"))
        archive_pin, manifest_pin = archive_pin or lab_archive, manifest_pin or lab_manifest
        extra_pins = _sandbox_extra_pins(profile) if registry == urls.get("model_registry") else {}
        # Sandbox hosts share the controller's RAM and disk: GPUs are simulated, memory
        # is not, so a shortfall there is reported as a warning instead of refusing.
        policy = "warn"
        container = sandbox_container(urls, registry)
    else:
        extra_pins = {}
        targets = from_inventory(opts.inventory, opts.user, opts.key) if opts.inventory else []
        targets += [from_argument(h, opts.user, opts.key) for h in opts.hosts]
    if not targets:
        raise UserInputError("no hosts: give HOST arguments, -i INVENTORY, or --sandbox")
    refuse_duplicates(targets)
    try:
        options = RenderOptions(forks=opts.forks or auto_forks(len(targets)), allow_reboot=opts.allow_reboot,
                                model_registry=registry,
                                ollama_archive_url=archive, ollama_archive_checksum=archive_pin,
                                model_manifest_digest=manifest_pin, allow_unpinned=opts.allow_unpinned,
                                extra_manifest_digests=extra_pins,
                                resource_policy=policy, **container)
    except ValidationError as exc:
        raise UserInputError("; ".join(f"{_option(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                                       for e in exc.errors())) from None
    return targets, options


# RenderOptions fields set from an option of another name.
_OPTION_OF = {"ollama_archive_url": "--ollama-url", "ollama_archive_checksum": "--ollama-sha256",
              "model_manifest_digest": "--model-digest"}


def _option(loc: tuple[int | str, ...]) -> str:
    """The command-line option a RenderOptions error is about, as the user wrote it."""
    named = "-".join(map(str, loc))
    return _OPTION_OF.get(named) or "--" + named.replace("_", "-")


def refuse_duplicates(targets: list[TargetHost]) -> None:
    """UserInputError naming a host given twice. A name is one inventory host, whatever user
    or port came with it (ws1, root@ws1 and ws1:22 are one host), and DNS names ignore case."""
    seen: dict[str, str] = {}
    for target in targets:
        first = seen.get(target.name.casefold())
        if first is not None:
            also = "" if first == target.name else f" (as {first} and {target.name})"
            raise UserInputError(f"host {target.name} given more than once{also}: give each host once, "
                                 "with one user and port")
        seen[target.name.casefold()] = target.name


def only_targets(targets: list[TargetHost], names: list[str]) -> list[TargetHost]:
    """The targets named (a retry's hosts), in the run's order; a name no longer among the
    targets is an error."""
    known = {t.name: t for t in targets}
    gone = [n for n in names if n not in known]
    if gone:
        raise UserInputError(f"--retry-failed: {', '.join(gone)} no longer among the run's hosts "
                             f"(have: {', '.join(known)})")
    return [known[n] for n in names]
