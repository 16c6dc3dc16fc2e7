"""Build the host-side benchmark as one zipapp (controller side).

The archive holds `coderig_deploy/{__init__,errors}.py` and this package (minus this
module), so `python3 coderig-bench.pyz --model M` runs with nothing but the host's
python3. The smoke role copies it with `ansible.builtin.script`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_ROOT = _PACKAGE.parent
MAIN = "import sys\nfrom coderig_deploy.bench.__main__ import main\nsys.exit(main())\n"


def _members() -> list[tuple[Path, str]]:
    files = [(_ROOT / "__init__.py", "coderig_deploy/__init__.py"),
             (_ROOT / "errors.py", "coderig_deploy/errors.py")]
    for path in sorted(_PACKAGE.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json") and path.name != "pyz.py" \
                and "__pycache__" not in path.parts:
            files.append((path, "coderig_deploy/bench/" + path.relative_to(_PACKAGE).as_posix()))
    return files


def zipapp_bytes(members: list[tuple[Path | bytes, str]], main: str) -> bytes:
    """A zipapp of `members` (file or content, name inside) that runs `main`; deterministic
    (fixed timestamps) for idempotent copies."""
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for source, name in [*members, (main.encode(), "__main__.py")]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, source if isinstance(source, bytes) else source.read_bytes())
    return buf.getvalue()


def build_pyz_bytes() -> bytes:
    """The benchmark zipapp as bytes."""
    return zipapp_bytes(list(_members()), MAIN)


def build_pyz(dest: Path) -> Path:
    """Write the zipapp to `dest` (mode 0755) and return it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(build_pyz_bytes())
    dest.chmod(0o755)
    return dest


if __name__ == "__main__":
    import sys

    print(build_pyz(Path(sys.argv[1] if len(sys.argv) > 1 else "coderig-bench.pyz")))
