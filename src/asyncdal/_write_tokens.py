"""Write tokens: a WAL position a client carries to a later request, signed so it cannot lie.

A token says "this client wrote at position P at time T": a read bringing it back waits (up
to ``replica_wait``) for a replica that has replayed P. Unsigned, a client could send a
position far in the future (every read of it polls replicas and then falls back to the
primary) or the all-ones position (every read pinned to the primary). So a token is
``w2.<P hex>.<T hex>.<HMAC-SHA256 of the rest, 128 bits, hex>`` under a secret of the
deployment (``Settings.token_secret`` / ``ASYNCDAL_TOKEN_SECRET``), and a token that is not
signed with it, is older than :data:`MAX_AGE` or dated in the future is *ignored*: the read runs
as if it had none (it may not see that write on a lagging replica, never worse), and the
database counts it (``DatabaseStats.write_tokens_ignored_total``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

__all__ = ["MAX_AGE", "MAX_LENGTH", "TokenSigner"]

#: Seconds a token stays valid: far longer than replicas lag, far shorter than forever.
MAX_AGE = 600
#: Seconds a token may be dated ahead of this process's clock (other processes' clocks).
CLOCK_SKEW = 60
#: No token is longer (a longer string is not read at all).
MAX_LENGTH = 64
_TOKEN = re.compile(r"\Aw2\.([0-9a-f]{1,16})\.([0-9a-f]{1,12})\.([0-9a-f]{32})\Z")


class TokenSigner:
    """Makes and checks the write tokens of one deployment (one secret)."""

    def __init__(self, secret: str | None) -> None:
        """Sign with ``secret``; ``None``: a random one of this process (tokens stay local)."""
        self._key = secret.encode() if secret is not None else secrets.token_bytes(32)
        self.random = secret is None

    def __repr__(self) -> str:
        return f"<TokenSigner {'per-process' if self.random else 'configured'} secret>"

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def sign(self, lsn: int, *, issued: int | None = None) -> str:
        """The token of WAL position ``lsn``, dated ``issued`` (default: now, in seconds)."""
        when = int(time.time()) if issued is None else issued
        body = f"w2.{lsn:x}.{when:x}"
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str) -> int | None:
        """The WAL position of a valid token; ``None`` for any other string."""
        if len(token) > MAX_LENGTH:
            return None
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        body = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._mac(body), match.group(3)):
            return None
        age = time.time() - int(match.group(2), 16)
        if age > MAX_AGE or age < -CLOCK_SKEW:
            return None
        return int(match.group(1), 16)
