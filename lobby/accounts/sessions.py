"""The lobby's session engine (SESSION_ENGINE): Django's database sessions with two
writes and a read fewer when a visitor signs in (a new guest, a login):

- `cycle_key` on a session that has no key yet (a new visitor, or a cookie naming no
  session) has nothing to rotate: the session gets its fresh random key when the request
  saves it, in one INSERT, instead of an INSERT of the empty session now and an UPDATE at
  the end of the request;
- a new key is not looked up before its INSERT: the primary key refuses a collision and
  `create` draws again (`CreateError`), as it does for the race the look-up leaves open;
- a load (every request of a signed-in visitor) reads the session's data column, not a
  `Session` instance through `get()`.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.core.exceptions import SuspiciousOperation
from django.utils import timezone
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
    def load(self) -> dict:
        """As Django's: the data of the unexpired session of this key, else {} and no key."""
        try:
            data = next(iter(self.model.objects.filter(
                session_key=self.session_key, expire_date__gt=timezone.now())
                .values_list("session_data", flat=True)[:1]), None)
        except SuspiciousOperation as e:
            logging.getLogger(f"django.security.{e.__class__.__name__}").warning(str(e))
            data = None
        if data is None:
            self._session_key = None
            return {}
        return self.decode(data)

    def cycle_key(self) -> None:
        if self.session_key is None:  # no key that anyone could know: a new one at save
            self.modified = True
            return
        super().cycle_key()

    async def acycle_key(self) -> None:
        if self.session_key is None:
            self.modified = True
            return
        await super().acycle_key()

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)
