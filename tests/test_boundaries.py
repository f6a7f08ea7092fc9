"""Trust boundaries and the direction of imports (DESIGN.md): internet-facing code never imports the keys,
and the core never imports the roles or entry points above it."""

from __future__ import annotations

import subprocess
import sys

import pytest

ROLES_AND_ENTRY_POINTS = ("candor.cli", "candor.server", "candor.ceremony")
RULES = {
    # module: prefixes it must not load, even transitively
    "candor.server": ("candor.keys", "candor.cli", "candor.ceremony"),
    # Internet-facing roles reach the signer only through an interface, never its module or the keys.
    "candor.acme": ("candor.keys", "candor.issuance", "candor.signing", *ROLES_AND_ENTRY_POINTS),
    "candor.validation": (
        "candor.keys",
        "candor.issuance",
        "candor.signing",
        "candor.storage",
        *ROLES_AND_ENTRY_POINTS,
    ),
    "candor.storage": ("candor.keys", *ROLES_AND_ENTRY_POINTS),
    "candor.audit": ("candor.keys", *ROLES_AND_ENTRY_POINTS),
    "candor.profiles": ("candor.keys", "candor.storage", *ROLES_AND_ENTRY_POINTS),
    "candor.policy": ("candor.keys", "candor.storage", "candor.profiles", *ROLES_AND_ENTRY_POINTS),
    "candor.lint": ("candor.keys", "candor.storage", *ROLES_AND_ENTRY_POINTS),
    "candor.keys": ("candor.storage", "candor.profiles", "candor.lint", *ROLES_AND_ENTRY_POINTS),
    "candor.config": ("candor.keys", "candor.storage", *ROLES_AND_ENTRY_POINTS),
}


@pytest.mark.parametrize("module", sorted(RULES))
def test_module_does_not_load_what_lies_across_its_boundary(module: str) -> None:
    code = f"import sys, {module}; print('\\n'.join(m for m in sys.modules if m.startswith('candor')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    crossing = sorted(m for m in loaded if m.startswith(RULES[module]))
    assert crossing == [], f"{module} loads {crossing}"
