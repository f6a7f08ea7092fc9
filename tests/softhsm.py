"""A SoftHSM2 token directory for tests, as the ``softhsm`` pytest fixture.

SoftHSM reads its configuration (``SOFTHSM2_CONF``) at C_Initialize and python-pkcs11 keeps the library
initialised for the life of the process, so tokens created afterwards with ``softhsm2-util`` are invisible to
this process (SoftHSM 2.6). The fixture therefore creates one token directory per test session and
initialises a pool of tokens up front, before anything loads the module; ``make_token()`` hands out an
unused one. Subprocesses (``pkcs11-tool``, the CLI) inherit ``SOFTHSM2_CONF`` and see the same tokens.

Register it once for the whole suite in ``tests/conftest.py``::

    pytest_plugins = ["softhsm"]

Tests then take ``softhsm`` as an argument and are marked ``@pytest.mark.softhsm``. When SoftHSM is not
installed the fixture skips, or fails if ``CANDOR_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MODULE = Path(os.environ.get("CANDOR_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so"))
POOL_SIZE = int(os.environ.get("CANDOR_SOFTHSM_TOKENS", "32"))
SO_PIN = "so-pin-4711"


def unavailable(reason: str) -> None:
    """Skip with *reason*, or fail with it when CANDOR_REQUIRE_ALL=1 asks for every test to run."""
    if os.environ.get("CANDOR_REQUIRE_ALL") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class SoftHsmToken:
    label: str
    pin: str
    so_pin: str = SO_PIN


@dataclass
class SoftHsm:
    module: Path
    conf: Path
    token_dir: Path
    _pool: list[SoftHsmToken] = field(default_factory=list)

    def make_token(self) -> SoftHsmToken:
        """An initialised token no other test has used (label ``candor-test-NN``, its own user PIN)."""
        if not self._pool:
            pytest.fail(f"SoftHSM token pool exhausted; raise CANDOR_SOFTHSM_TOKENS (now {POOL_SIZE})")
        return self._pool.pop(0)

    def pkcs11_tool(self, token: SoftHsmToken, *args: str) -> str:
        """Run OpenSC's pkcs11-tool logged in to *token*; its stdout."""
        if shutil.which("pkcs11-tool") is None:
            unavailable("pkcs11-tool (opensc) is not installed")
        result = subprocess.run(
            ["pkcs11-tool", "--module", str(self.module), "--token-label", token.label,
             "--login", "--pin", token.pin, *args],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"pkcs11-tool {' '.join(args)} failed: {result.stderr.strip()}", pytrace=False)
        return result.stdout


_INSTANCE: SoftHsm | None = None


def _create(base: Path) -> SoftHsm:
    token_dir = base / "tokens"
    token_dir.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {token_dir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)  # process-wide on purpose: the library reads it once
    pool = []
    for index in range(1, POOL_SIZE + 1):
        token = SoftHsmToken(label=f"candor-test-{index:02d}", pin=f"user-pin-{index:02d}-{os.getpid()}")
        result = subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", token.label,
             "--pin", token.pin, "--so-pin", token.so_pin],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            pytest.fail(f"softhsm2-util --init-token failed: {result.stderr.strip()}", pytrace=False)
        pool.append(token)
    import pkcs11

    visible = {token.label for token in pkcs11.lib(str(MODULE.resolve())).get_tokens()}
    if pool[0].label not in visible:
        pytest.fail(
            "the SoftHSM module was initialised in this process before the softhsm fixture set "
            "SOFTHSM2_CONF; its tokens are invisible",
            pytrace=False,
        )
    return SoftHsm(module=MODULE, conf=conf, token_dir=token_dir, _pool=pool)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """The session's SoftHSM (one per process, however many times this fixture is registered)."""
    global _INSTANCE
    if shutil.which("softhsm2-util") is None:
        unavailable("softhsm2-util (SoftHSM2) is not installed")
    if not MODULE.is_file():
        unavailable(f"SoftHSM2 PKCS#11 module {MODULE} is missing")
    if _INSTANCE is None:
        _INSTANCE = _create(tmp_path_factory.mktemp("softhsm"))
    return _INSTANCE
