"""Key ceremonies: create a CA hierarchy from one reviewable file, with an audit event for every step."""

from __future__ import annotations

from candor.ceremony.publish import PublicFiles
from candor.ceremony.runner import Ceremony, CeremonyResult
from candor.ceremony.spec import CeremonySpec, load_ceremony

__all__ = ["Ceremony", "CeremonyResult", "CeremonySpec", "PublicFiles", "load_ceremony"]
