"""What a password must be to be accepted from the API and from the `postroom user` commands.

The reference asks for 12 to 64 characters and a complexity check; Postroom asks for at least 8
characters (test and service accounts are often created by scripts), not only digits, and not
the username itself. There is no upper bound worth enforcing below the request size limit: argon2
hashes any length in constant memory, but 256 characters keep bodies sane.
"""

from __future__ import annotations

from postroom.errors import BadRequest

MIN_LENGTH = 8
MAX_LENGTH = 256


def check(password: str, username: str | None = None, field: str = "password") -> None:
    """Raise a 400 naming `field` when `password` does not meet the policy."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(f"{field}: must be at least {MIN_LENGTH} characters long.")
    if len(password) > MAX_LENGTH:
        raise BadRequest(f"{field}: must be at most {MAX_LENGTH} characters long.")
    if password.isdigit():
        raise BadRequest(f"{field}: must not consist of digits only.")
    if username and password.strip().lower() == username.strip().lower():
        raise BadRequest(f"{field}: must not be the username.")
