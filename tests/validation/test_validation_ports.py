"""WS-02e, a configuration audit: the validators can only ever contact ports 80 and 443, no caller can choose
another port, host, scheme or path (WoSign "Incident 0"; StartEncrypt, WS-11a), and no validator asks the
operating system to resolve a name (DNS rebinding)."""

from __future__ import annotations

import ast
import importlib
import inspect
import ipaddress
import re
import subprocess
import sys
from pathlib import Path

import pytest

import candor.validation
import candor.validation.dnssec
from candor.validation import _net, http01, tlsalpn01

PACKAGE = Path(candor.validation.__file__).parent
PUBLIC_MODULES = ["candor.validation", "candor.validation.addresses", "candor.validation.http01"]
PUBLIC_MODULES += ["candor.validation.tlsalpn01", "candor.validation.dns01", "candor.validation.dnssec"]
PUBLIC_MODULES += ["candor.validation.denial"]
# results: they report a port (or a DNSSEC "security" status), take none
RECORDS = {candor.validation.Contact, candor.validation.ValidationResult, candor.validation.dnssec.Validated}
STEERING = re.compile(r"port|url|uri|path|scheme|host|location", re.IGNORECASE)
# Public callables whose matching parameters steer no connection, each with the reason.
EXEMPT = {
    "candor.validation.ChallengeValidator.validate": "account_uri is passed on to the CAA check, never contacted",
    "candor.validation.ChallengeValidator.recheck_caa": "account_uri is RFC 8657's accounturi, never contacted",
    "candor.validation.caa_decision": "account_uri is RFC 8657's accounturi, compared with a record, never contacted",
}


def test_ws02e_the_ports_the_validators_may_contact_are_exactly_80_and_443() -> None:
    assert sorted(_net.ALLOWED_PORTS) == [80, 443]
    assert sorted(http01.CONTACT_PORTS) == [80, 443]
    assert sorted(tlsalpn01.CONTACT_PORTS) == [443]
    assert (http01.CONTACT_PORTS | tlsalpn01.CONTACT_PORTS).issubset({80, 443})


def _public_callables() -> list[object]:
    found: list[tuple[str, object]] = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if value in RECORDS:
                continue
            if inspect.isclass(value):
                found += [(f"{module_name}.{name}", value)]
                found += [
                    (f"{module_name}.{name}.{method}", member)
                    for method, member in vars(value).items()
                    if callable(member) and not method.startswith("_")
                ]
            elif callable(value):
                found.append((f"{module_name}.{name}", value))
    return [pytest.param(name, value, id=name) for name, value in found]


@pytest.mark.parametrize(("name", "function"), _public_callables())
def test_ws02e_no_public_function_accepts_a_port_host_scheme_or_path(name: str, function: object) -> None:
    try:
        parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # not introspectable (a typing alias, a Protocol internals): takes no arguments of ours
    steering = [p for p in parameters if STEERING.search(p)]
    if name in EXEMPT:
        assert steering, f"{name} is exempt but takes nothing to exempt: drop it from EXEMPT"
        return
    assert steering == [], f"{name} accepts {steering}"


def test_the_one_connect_function_refuses_any_other_port_before_creating_a_socket(
    connections: list[tuple[str, int]],
) -> None:
    for port in (8080, 8443, 25, 22, 50001):
        with pytest.raises(ValueError, match="80, 443"):
            _net._open(ipaddress.IPv4Address("127.0.0.1"), port, 1.0)
    assert connections == []


def _calls(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
            elif isinstance(node.func, ast.Name):
                names.add(node.func.id)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_validator_lets_the_operating_system_resolve_a_name(path: Path) -> None:
    forbidden = {"create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "urlopen", "request"}
    forbidden |= {"connect"} if path.name != "_net.py" else set()
    assert _calls(path) & forbidden == set()


def test_validation_does_not_load_keys_storage_or_entry_points() -> None:
    code = "import sys, candor.validation; print('\\n'.join(m for m in sys.modules if m.startswith('candor')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    across = ("candor.keys", "candor.storage", "candor.issuance", "candor.cli", "candor.server", "candor.ceremony")
    assert [m for m in loaded if m.startswith(across)] == []
