"""Render a self-contained Ansible project: ProjectSpec in, file bytes out (pure).

The project holds `site.yml`, `inventory.yml`, `group_vars/all.yml`,
`ansible.cfg` and a README rendered from `templates/*.j2`, plus the roles copied
byte for byte from `playbooks/roles/`. The same spec gives the same bytes:
templates iterate sorted data, and nothing time- or machine-dependent is written.
`ansible-playbook -i DIR/inventory.yml DIR/site.yml` runs it without coderig.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

from coderig_deploy import __version__
from coderig_deploy.errors import EnvironmentProblem, UserInputError
from coderig_deploy.bundle.install import HOST_APT_DIR, HOST_IMAGE_DIR, store_dirs
from coderig_deploy.project import ProjectSpec
from coderig_deploy.resources import shipped_dir
from coderig_deploy.safetext import safe

# template (under templates/) -> file in the rendered project
TEMPLATES: dict[str, str] = {
    "ansible.cfg.j2": "ansible.cfg",
    "site.yml.j2": "site.yml",
    "inventory.yml.j2": "inventory.yml",
    "group_vars/all.yml.j2": "group_vars/all.yml",
    "README.md.j2": "README.md",
}
ROLES = ("host_lock", "preflight", "nvidia_driver", "ollama", "models", "smoke")
BUNDLE_ROLES = ("bundle_sync",)  # only in projects that install from an offline bundle
CONTAINER_ROLES = ("container_runtime",)  # only in projects with ollama.runtime docker
_SKIP_PARTS = {"__pycache__", ".pytest_cache"}


def yaml_value(value: Any) -> str:
    """A YAML flow scalar or collection for `value` (JSON is YAML; keys sorted)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items below their key, as yamllint (and so ansible-lint) expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def yaml_block(value: Any, indent: int = 2) -> str:
    """A YAML block for a nested `value`, each line indented by `indent`, keys sorted."""
    text = yaml.dump(value, Dumper=_IndentedDumper, default_flow_style=False, sort_keys=True,
                     allow_unicode=False, width=120)
    pad = " " * indent
    return "\n" + "".join(pad + line + "\n" for line in text.splitlines()).rstrip("\n")


def yaml_unsafe(value: str) -> str:
    """A string Ansible must never template (free text such as a description)."""
    return "!unsafe " + json.dumps(value, ensure_ascii=True)


def _environment(template_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["y"] = yaml_value
    env.filters["unsafe"] = yaml_unsafe
    env.filters["yblock"] = yaml_block
    # Free text in the README is shown with its bidi and control characters as escapes, as
    # group_vars (JSON escapes) and `profiles show` (safetext) show it.
    env.filters["escaped"] = safe
    return env


def group_name(profile: str) -> str:
    """The inventory group of a profile's hosts in a fleet project (Ansible group names
    take letters, digits and underscores only). No host may take such a name
    (project._GROUP_NAME)."""
    return "coderig_" + re.sub(r"[^A-Za-z0-9_]", "_", profile)


def _context(spec: ProjectSpec, groups: list[tuple[str | None, ProjectSpec]]) -> dict[str, Any]:
    return {"spec": spec, "api_url": spec.api_url, "coderig_version": __version__,
            "bundle_store_dirs": store_dirs(spec.bundle) if spec.bundle is not None else [],
            "bundle_apt_dir": HOST_APT_DIR, "bundle_image_dir": HOST_IMAGE_DIR, "groups": [(name, s.hosts) for name, s in groups],
            "profile_label": ", ".join(s.profile for _, s in groups)}


def _render(env: jinja2.Environment, template: str, context: dict[str, Any]) -> bytes:
    try:
        return env.get_template(template).render(**context).encode()
    except jinja2.UndefinedError as exc:
        raise EnvironmentProblem(f"template {template}: {exc.message}") from None


def render_project(spec: ProjectSpec, template_dir: Path | None = None,
                   roles_dir: Path | None = None) -> dict[str, bytes]:
    """Every file of the project, keyed by its path relative to the project root."""
    env = _environment(template_dir or shipped_dir("templates"))
    context = _context(spec, [(None, spec)])
    files = {target: _render(env, template, context) for template, target in TEMPLATES.items()}
    roles = ROLES + (BUNDLE_ROLES if spec.bundle is not None else ()) + \
        (CONTAINER_ROLES if spec.container is not None else ())
    files.update(_role_files(roles_dir or shipped_dir("playbooks") / "roles", roles))
    return dict(sorted(files.items()))


def render_fleet(specs: list[ProjectSpec], template_dir: Path | None = None,
                 roles_dir: Path | None = None) -> dict[str, bytes]:
    """One project for hosts of several profiles: one inventory group per profile
    (`coderig_<profile>`, children of `coderig`) with its own group_vars file, the
    same roles and play. One profile renders exactly as render_project."""
    if len(specs) == 1:
        return render_project(specs[0], template_dir, roles_dir)
    if any(s.container is not None for s in specs):
        raise UserInputError("ollama.runtime docker is applied one profile at a time for now: "
                             f"run one apply per profile ({', '.join(s.profile for s in specs)})")
    if any(s.bundle is not None for s in specs):
        raise UserInputError("--bundle carries one profile's artifacts: it cannot provision hosts of "
                             f"several profiles ({', '.join(s.profile for s in specs)}); run one apply per profile")
    groups = sorted(((group_name(s.profile), s) for s in specs), key=lambda g: g[0])
    names = [g for g, _ in groups]
    if len(set(names)) != len(names):
        raise UserInputError(f"profiles {', '.join(s.profile for s in specs)} give the same inventory group name")
    env = _environment(template_dir or shipped_dir("templates"))
    first = _context(groups[0][1], groups)  # type: ignore[arg-type]
    files = {target: _render(env, template, first) for template, target in TEMPLATES.items()
             if target not in ("group_vars/all.yml", "README.md")}
    readmes = []
    for name, spec in groups:
        context = _context(spec, [(name, spec)])
        files[f"group_vars/{name}.yml"] = _render(env, "group_vars/all.yml.j2", context)
        readmes.append(_render(env, "README.md.j2", context).decode())
    files["README.md"] = ("# coderig-deploy fleet project\n\nOne inventory group per profile: "
                          + ", ".join(f"`{n}` ({s.profile})" for n, s in groups)
                          + "; each group's variables are in group_vars/GROUP.yml.\n\n"
                          + "\n".join("#" + text for text in readmes)).encode()
    files.update(_role_files(roles_dir or shipped_dir("playbooks") / "roles", ROLES))
    return dict(sorted(files.items()))


def _role_files(roles_dir: Path, roles: tuple[str, ...] = ROLES) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for role in roles:
        root = roles_dir / role
        if not root.is_dir():
            raise EnvironmentProblem(f"role {role} missing from {roles_dir}")
        for path in sorted(root.rglob("*")):
            if path.is_file() and not _SKIP_PARTS.intersection(path.parts) and path.suffix != ".pyc":
                files[f"roles/{role}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def write_project(files: dict[str, bytes], dest: Path, extra: dict[str, Path] | None = None) -> Path:
    """Write `files` under `dest` (which must be empty or absent); copy `extra` files into it."""
    if dest.exists() and any(dest.iterdir()):
        raise UserInputError(f"{dest} is not empty: render into a new directory")
    for relative, data in files.items():
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for relative, source in (extra or {}).items():
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    return dest
