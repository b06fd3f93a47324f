"""Passwords, editor logins, API tokens and CSRF protection.

* Passwords: argon2id (argon2-cffi defaults); a failed lookup still spends one hash
  verification so response time does not reveal which usernames exist.
* Logins are server-side: the cookie carries a random token, the database keeps only
  its SHA-256, so logging out (or deactivating a user) ends the login at once.
* API tokens: random, shown once, stored as SHA-256, sent as ``Authorization: Bearer``.
  The API never looks at cookies, so a browser cannot be tricked into calling it.
* CSRF (forms only): a random cookie plus a form field carrying HMAC(secret, cookie);
  on top, a request whose ``Sec-Fetch-Site`` or ``Origin`` says it came from another
  site is refused before the token is even compared.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from liveblog import store
from liveblog.models import ApiToken, LoginSession, Role, User, utcnow
from liveblog.plaintext import forbidden_character

SESSION_COOKIE = "liveblog_session"
CSRF_COOKIE = "liveblog_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
USERNAME_RE = r"^[a-z0-9][a-z0-9_.-]{0,39}$"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_DISPLAY_NAME = 100

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- users ---------------------------------------------------------------------------


class UserError(ValueError):
    pass


class UserExists(UserError):
    pass


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: Role = Role.editor,
    display_name: str | None = None,
) -> User:
    username = username.strip().lower()
    if not re.fullmatch(USERNAME_RE, username):
        raise UserError("username: 1-40 lowercase letters, digits, '.', '_' or '-'")
    check_new_password(password)
    existing = await store.get_user_by_username(session, username)
    if existing is not None:
        raise UserExists(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=clean_display_name(display_name, fallback=username),
        password_hash=hash_password(password),
        role=role,
    )
    session.add(user)
    await session.flush()
    return user


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password must be at most {MAX_PASSWORD} characters")
    if forbidden_character(password) is not None:
        raise UserError("password must not contain control characters")


def clean_display_name(display_name: str | None, *, fallback: str) -> str:
    name = (display_name or "").strip()
    if len(name) > MAX_DISPLAY_NAME:
        raise UserError(f"display name must be at most {MAX_DISPLAY_NAME} characters")
    if forbidden_character(name) is not None:
        raise UserError("display name must not contain control characters")
    return name or fallback


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    """A new password (an admin's reset): every login of the user ends."""
    check_new_password(password)
    user.password_hash = hash_password(password)
    session.add(user)
    assert user.id is not None
    await end_all_logins(session, user.id)


async def set_active(session: AsyncSession, user: User, active: bool) -> None:
    """Deactivation takes effect at once: logins and tokens are checked against
    ``active`` on every request, and the user's logins are also deleted."""
    user.active = active
    session.add(user)
    if not active:
        assert user.id is not None
        await end_all_logins(session, user.id)


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    username = username.strip().lower()
    user = None
    # A name no account can have is not looked up (PostgreSQL refuses NUL bytes in a
    # query), but still costs one hash verification like any other failure.
    if re.fullmatch(USERNAME_RE, username):
        user = await store.get_user_by_username(session, username)
    ok = verify_password(None if user is None else user.password_hash, password)
    if user is None or not ok or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.add(user)
    return user


# --- editor logins -------------------------------------------------------------------


async def start_login(session: AsyncSession, user: User, *, days: int) -> str:
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            token_hash=digest(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    return token


async def user_for_login(session: AsyncSession, token: str) -> User | None:
    query = (
        select(User)
        .join(LoginSession, col(LoginSession.user_id) == User.id)
        .where(
            LoginSession.token_hash == digest(token),
            col(LoginSession.expires_at) > utcnow(),
            col(User.active).is_(True),
        )
    )
    return (await session.exec(query)).first()


async def end_login(session: AsyncSession, token: str) -> None:
    row = (
        await session.exec(select(LoginSession).where(LoginSession.token_hash == digest(token)))
    ).first()
    if row is not None:
        await session.delete(row)


async def end_all_logins(session: AsyncSession, user_id: int) -> None:
    """Log a user out everywhere (deactivation, a password reset)."""
    await session.exec(
        sql_delete(LoginSession)
        .where(col(LoginSession.user_id) == user_id)
        .execution_options(synchronize_session=False)
    )


# --- API tokens ----------------------------------------------------------------------

TOKEN_PREFIX = "lb_"


async def create_api_token(
    session: AsyncSession, user: User, *, name: str = "", read_only: bool = False
) -> str:
    assert user.id is not None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(user_id=user.id, name=name[:100], token_hash=digest(token), read_only=read_only)
    )
    return token


async def list_api_tokens(
    session: AsyncSession, *, owner: User | None
) -> list[tuple[ApiToken, User]]:
    """Tokens newest first, with their users: one user's, or everyone's (owner=None)."""
    query = (
        select(ApiToken, User)
        .join(User, col(User.id) == ApiToken.user_id)
        .order_by(col(ApiToken.id).desc())
    )
    if owner is not None:
        query = query.where(ApiToken.user_id == owner.id)
    return [(token, user) for token, user in (await session.exec(query)).all()]


async def revoke_api_token(
    session: AsyncSession, token_id: int, *, by: User, any_owner: bool = False
) -> bool:
    """Revoke a token of ``by`` (anyone's, with ``any_owner``: see liveblog.policy).
    False if there is none such."""
    if not 0 < token_id < 2**63:
        return False
    token = await session.get(ApiToken, token_id)
    if token is None or (not any_owner and token.user_id != by.id):
        return False
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
    return True


async def user_for_api_token(session: AsyncSession, token: str) -> tuple[User, ApiToken] | None:
    query = (
        select(User, ApiToken)
        .join(ApiToken, col(ApiToken.user_id) == User.id)
        .where(
            ApiToken.token_hash == digest(token),
            col(ApiToken.revoked_at).is_(None),
            col(User.active).is_(True),
        )
    )
    row = (await session.exec(query)).first()
    if row is None:
        return None
    user, api_token = row
    now = utcnow()
    # Record use at most once a minute: an automation posting every second should not
    # turn every request into an extra write.
    if api_token.last_used_at is None or now - api_token.last_used_at > timedelta(minutes=1):
        await session.exec(
            sql_update(ApiToken)
            .where(col(ApiToken.id) == api_token.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return user, api_token


# --- CSRF ----------------------------------------------------------------------------


class Csrf:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"liveblog-csrf\0" + secret.encode()).digest()

    def token_for(self, cookie_value: str) -> str:
        return hmac.new(self._key, cookie_value.encode(), hashlib.sha256).hexdigest()

    def check_token(self, cookie_value: str | None, submitted: str | None) -> bool:
        # (compare_digest refuses non-ASCII str, and no real token has any.)
        if not cookie_value or not submitted or not submitted.isascii():
            return False
        return hmac.compare_digest(self.token_for(cookie_value), submitted)


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def cross_site(request: Request) -> bool:
    """True when the browser tells us the request came from another site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    expected = f"{request.url.scheme}://{request.url.netloc}"
    return origin != expected
