"""The air-gap promises as checks, from one host's probe document (pure).

    checks = airgap_checks(probe, Expected(model="qwen2.5-coder:14b...", digest="sha256:...",
                                           registries=("10.0.0.1:5000",)))
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from coderig_deploy.airgap.probe import default_routes_v4, default_routes_v6, environment
from coderig_deploy.reports.model import CheckResult

DEFAULT_REGISTRY = "registry.ollama.ai"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
_ON = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Expected:
    model: str  # the tag the profile serves
    digest: str  # "sha256:<hex>": the bundle's manifest digest
    registries: tuple[str, ...] = field(default_factory=tuple)  # the site's registry mirrors (host:port)


def _check(name: str, ok: bool, reason: str, measured: Any = None, expected: Any = None) -> CheckResult:
    return CheckResult(name=name, status="pass" if ok else "fail", reason=reason, measured=measured,
                       expected=expected, source="validate")


def no_default_route(probe: dict[str, Any]) -> CheckResult:
    routes = default_routes_v4(probe.get("route4")) + default_routes_v6(probe.get("route6"))
    return _check("no_default_route", not routes,
                  "no default route" if not routes else f"default route {'; '.join(routes)}: remove it", routes, [])


def no_public_connection(probe: dict[str, Any]) -> CheckResult:
    attempts = probe.get("attempts") or []
    routed = [a for a in attempts if a.get("route")]
    if routed:
        where = ", ".join(f"{a['address']} (from {a.get('source', '?')})" for a in routed)
        return _check("no_public_connection", False,
                      f"the host has a route to {where}: nothing was sent, the route alone breaks the air gap",
                      attempts)
    connected = [a for a in attempts if a.get("connected")]
    local = [a for a in attempts if a.get("errno") == errno.ENETUNREACH]
    if connected or len(local) != len(attempts) or not attempts:
        odd = ", ".join(f"{a['address']}: {a.get('error', 'connected')}" for a in attempts if a not in local)
        return _check("no_public_connection", False, f"expected 'Network is unreachable', got {odd or 'no attempt'}",
                      attempts)
    tried = ", ".join(f"{a['address']}:{a['port']}" for a in attempts)
    return _check("no_public_connection", True, f"{tried}: Network is unreachable (failed on the host)", attempts)


def ollama_no_cloud(probe: dict[str, Any]) -> CheckResult:
    if probe.get("ollama_environ") is None:
        return _check("ollama_no_cloud", False,
                      "neither the ollama service nor an ollama container is running (no process to read)")
    value = environment(probe["ollama_environ"]).get("OLLAMA_NO_CLOUD")
    ok = (value or "").lower() in _ON
    where = " in its container" if probe.get("ollama_runtime") == "container" else ""
    return _check("ollama_no_cloud", ok, f"Ollama runs{where} with OLLAMA_NO_CLOUD=" + (value or "(unset)")
                  + ("" if ok else ": set it in the ollama drop-in or the container (apply --bundle does)"),
                  value, "1")


def site_registry_only(probe: dict[str, Any], expected: Expected) -> CheckResult:
    env = environment(probe.get("ollama_environ"))
    proxies = [f"{name}={env[name]}" for name in PROXY_VARIABLES if env.get(name)]
    allowed = {DEFAULT_REGISTRY, *expected.registries}  # the default host holds bundle-installed models
    others = sorted({_registry(m.get("name", "")) for m in (probe.get("tags") or {}).get("models", [])} - allowed)
    problems = ([f"a proxy gives Ollama a way out ({', '.join(proxies)})"] if proxies else []) + \
        ([f"models from registries other than the site's: {', '.join(others)}"] if others else [])
    sites = ", ".join(expected.registries) or "none (models from the bundle)"
    return _check("site_registry_only", not problems, "; ".join(problems) or f"no proxy; registries: {sites}",
                  {"proxies": proxies, "registries": others}, list(expected.registries))


def _registry(name: str) -> str:
    first = name.split("/")[0]
    return first if "/" in name and ("." in first or ":" in first) else DEFAULT_REGISTRY


def model_digest(probe: dict[str, Any], expected: Expected) -> CheckResult:
    if probe.get("tags") is None:
        return _check("model_digest", False, f"Ollama's /api/tags did not answer: {probe.get('tags_error')}")
    models = {m.get("name"): m.get("digest", "") for m in probe["tags"].get("models", [])}
    name = expected.model if expected.model in models else f"{expected.model}:latest" \
        if f"{expected.model}:latest" in models else None
    if name is None:
        return _check("model_digest", False, f"{expected.model} is not on the host", sorted(models), expected.digest)
    digest = "sha256:" + str(models[name]).removeprefix("sha256:")
    ok = digest == expected.digest
    return _check("model_digest", ok, f"{name} has the bundle's manifest digest" if ok else
                  f"{name} has manifest digest {digest}, the bundle's is {expected.digest}", digest, expected.digest)


def airgap_checks(probe: dict[str, Any], expected: Expected) -> list[CheckResult]:
    """Every air-gap check of one host, in the order an auditor reads them."""
    return [no_default_route(probe), no_public_connection(probe), ollama_no_cloud(probe),
            site_registry_only(probe, expected), model_digest(probe, expected)]
