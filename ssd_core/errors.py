"""The one exception type that carries a message meant for the user.

Anything raised as :class:`InputError` is shown as-is (one sentence) by the CLI and the
dashboard; every other exception is a bug and is reported as such.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user (argument, file, request); the message is one clear sentence."""
