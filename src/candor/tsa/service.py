"""The time-stamping service: a TimeStampReq's bytes in, a TimeStampResp's bytes out, never an exception.

For each request, in this order (RFC 3161 2.4; CSBR 6.8):

1. parse it strictly (:mod:`.request`): a malformed request, SHA-1 or another unsupported imprint hash, an
   imprint of the wrong length, another policy or any extension is a rejection with its failInfo;
2. ask the clock watch (:mod:`candor.timekeeping`): a clock not known to be within its bound means
   timeNotAvailable, and nothing is signed;
3. read the time, choose the unit whose usage period holds it (:mod:`.units`), draw a serial (:mod:`.serials`);
4. queue the token's record (:mod:`.records`) and sign meanwhile; answer once the record is committed.

Anything unexpected (the database, a key store) is systemFailure, with the details in the log only.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from candor.clock import Clock
from candor.timekeeping import ClockWatch
from candor.tsa.records import TokenRecord, TokenRecorder
from candor.tsa.reply import SYSTEM_FAILURE, FailureInfo, Rejected, granted
from candor.tsa.request import parse_request
from candor.tsa.serials import SerialAllocator
from candor.tsa.units import UnitSet

log = logging.getLogger(__name__)
TIME_NOT_AVAILABLE = Rejected(FailureInfo.TIME_NOT_AVAILABLE, "the TSA's clock is not verified now; retry later").reply
NO_UNIT = Rejected(FailureInfo.SYSTEM_FAILURE, "no TSA unit may sign now; retry later").reply


class TsaService:
    def __init__(
        self,
        *,
        policy: str,
        precision_digits: int,
        units: UnitSet,
        recorder: TokenRecorder,
        watch: ClockWatch,
        clock: Clock,
        serials: SerialAllocator | None = None,
    ) -> None:
        self.policy = policy
        self.units = units
        self.recorder = recorder
        self.watch = watch
        self.clock = clock
        self.serials = serials or SerialAllocator()
        self._step = 10 ** (6 - precision_digits)  # genTime is truncated to this many microseconds
        self._without_unit = False

    async def respond(self, body: bytes) -> bytes:
        """The DER TimeStampResp for the DER TimeStampReq *body*."""
        try:
            return await self._respond(body)
        except Rejected as rejected:
            return rejected.reply
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tsa: a request failed; answered systemFailure")
            return SYSTEM_FAILURE

    async def _respond(self, body: bytes) -> bytes:
        request = parse_request(body, policy=self.policy)
        if not self.watch.status().trustworthy:  # fail closed (CSBR 6.8); the watch logs and audits why
            return TIME_NOT_AVAILABLE
        now = self.clock.now()
        moment = now.replace(microsecond=now.microsecond - now.microsecond % self._step)
        unit = self.units.current(moment)
        if unit is None or not unit.record.usable_at(moment):  # CSBR 6.3.2: never a key past its usage period
            self._no_unit(moment)
            return NO_UNIT
        self._without_unit = False
        serial = self.serials.next()
        tst_info = unit.signer.tst_info(request, serial, moment)
        recorded = self.recorder.submit(
            TokenRecord(serial, unit.record.id, self.policy, request.algorithm.oid, request.hashed_message, moment)
        )
        try:
            if unit.blocking:
                token = await asyncio.to_thread(unit.signer.sign, tst_info, with_certificates=request.cert_req)
            else:
                token = unit.signer.sign(tst_info, with_certificates=request.cert_req)
        finally:
            await recorded  # a token leaves only with its record committed; a failed record fails the request
        return granted(token)

    def _no_unit(self, moment: datetime) -> None:
        if not self._without_unit:
            self._without_unit = True
            log.error("tsa: no unit is in its key usage period at %s; refusing to sign (CSBR 6.3.2)", moment)
