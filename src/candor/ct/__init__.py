"""Certificate Transparency: Candor's own RFC 6962 log (``candor.ct.log``).

The CA-side submission client, SCT verification and log policy come later in this package; the log server
is in :mod:`candor.ct.log`. Nothing is imported here, so that :mod:`candor.config` can read the log settings
without loading the storage or the web stack.
"""

__all__: list[str] = []
