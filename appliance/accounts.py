"""Who may use the box: web accounts, the first-run set-up PIN, and API tokens.

There is no default password. Until the first admin exists, the web page
asks for one, and only someone who can read the one-time set-up PIN (on
the box's screen and in its log) may create it. Passwords and tokens are
kept only as salted scrypt hashes (the standard library's, no web
framework needed). Repeated wrong passwords lock an account for a while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from appliance import kv
from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import SmsGenieError

ROLES = ("admin", "staff")
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
MIN_PASSWORD = 8
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccountError(SmsGenieError, ValueError):
    """A username, password or role that cannot be used, said so plainly."""


class LoginRefused(SmsGenieError):
    """Wrong username or password, or the account is locked for now."""


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def check_secret(secret: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), dklen=len(expected),
                             n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def token_digest(token: str) -> str:
    """Tokens are long and random, so a plain SHA-256 (fast, for every API call) is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class ApiClient:
    """A shop system calling the API with one token."""

    id: int
    name: str


class Accounts:
    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    # --- users --------------------------------------------------------------------

    def any_users(self) -> bool:
        return self.db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def create(self, username: str, password: str, role: str) -> User:
        username = username.strip()
        if not username or len(username) > 32 or any(c.isspace() for c in username):
            raise AccountError("a username is 1 to 32 characters without spaces")
        if role not in ROLES:
            raise AccountError(f"the role is {' or '.join(ROLES)}")
        check_password(password, username)
        with self.db.atomic() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise AccountError(f"there is already a user called {username!r}")
            cur = conn.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                               (username, hash_secret(password), role, self.clock.time()))
            return User(cur.lastrowid, username, role)

    def login(self, username: str, password: str) -> User:
        """The user, or LoginRefused; a locked account is refused even with the right password."""
        now = self.clock.time()
        row = self.db.execute("SELECT * FROM users WHERE username = ?", (username.strip(),)).fetchone()
        if row is None:
            check_secret(password, hash_secret("x"))  # the same work either way: no user-name probing by timing
            raise LoginRefused("wrong username or password")
        if row["locked_until"] > now:
            minutes = max(1, round((row["locked_until"] - now) / 60))
            raise LoginRefused(f"too many wrong passwords: this account is locked for {minutes} more minute"
                               f"{'s' if minutes != 1 else ''}")
        if not check_secret(password, row["password_hash"]):
            failures = row["failed_logins"] + 1
            locked = now + LOCK_SECONDS if failures >= MAX_FAILURES else 0
            with self.db.atomic() as conn:
                conn.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?",
                             (0 if locked else failures, locked, row["id"]))
            if locked:
                raise LoginRefused(f"too many wrong passwords: this account is locked for {LOCK_SECONDS // 60} "
                                   f"minutes")
            raise LoginRefused("wrong username or password")
        with self.db.atomic() as conn:
            conn.execute("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", (row["id"],))
        return User(row["id"], row["username"], row["role"])

    def get(self, user_id: int) -> User | None:
        row = self.db.execute("SELECT id, username, role FROM users WHERE id = ?", (user_id,)).fetchone()
        return User(*row) if row else None

    def all(self) -> list[User]:
        return [User(*r) for r in self.db.execute("SELECT id, username, role FROM users ORDER BY username")]

    def change_password(self, user_id: int, old: str, new: str) -> None:
        row = self.db.execute("SELECT username, password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None or not check_secret(old, row["password_hash"]):
            raise AccountError("the current password is not right")
        self.set_password(user_id, new)

    def set_password(self, user_id: int, new: str) -> None:
        row = self.db.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise AccountError("no such user")
        check_password(new, row["username"])
        with self.db.atomic() as conn:  # a new password ends every session the old one opened
            conn.execute("UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0,"
                         " session_epoch = session_epoch + 1 WHERE id = ?", (hash_secret(new), user_id))

    def set_role(self, user_id: int, role: str) -> None:
        """Make a user admin or staff; their sessions end (they sign in again with the new rights)."""
        if role not in ROLES:
            raise AccountError(f"the role is {' or '.join(ROLES)}")
        with self.db.atomic() as conn:
            row = conn.execute("SELECT role FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise AccountError("no such user")
            admins = conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]
            if row["role"] == "admin" and role != "admin" and admins <= 1:
                raise AccountError("this is the last admin; make another admin first")
            conn.execute("UPDATE users SET role = ?, session_epoch = session_epoch + 1 WHERE id = ?", (role, user_id))

    # --- sessions ------------------------------------------------------------------------

    def session_epoch(self, user_id: int) -> int | None:
        """What a new session of this user records (None: no such user)."""
        row = self.db.execute("SELECT session_epoch FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else row[0]

    def session_user(self, user_id: int, epoch: int | None) -> User | None:
        """The user a session belongs to, if it is still valid: the user exists and has not ended their
        sessions (logout, a new password or role) since it began."""
        row = self.db.execute("SELECT id, username, role, session_epoch FROM users WHERE id = ?",
                              (user_id,)).fetchone()
        if row is None or row["session_epoch"] != epoch:
            return None
        return User(row["id"], row["username"], row["role"])

    def end_sessions(self, user_id: int) -> None:
        """End every session of this user, on every device."""
        with self.db.atomic() as conn:
            conn.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?", (user_id,))

    def delete(self, user_id: int) -> None:
        with self.db.atomic() as conn:
            row = conn.execute("SELECT role FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise AccountError("no such user")
            admins = conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]
            if row["role"] == "admin" and admins <= 1:
                raise AccountError("this is the last admin; make another admin first")
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # --- the first-run set-up PIN ----------------------------------------------------------

    def new_setup_pin(self) -> str:
        """A fresh six-digit PIN (shown on the box and in its log); only its hash is kept."""
        pin = f"{secrets.randbelow(10**6):06d}"
        with self.db.atomic() as conn:
            kv.put(conn, "setup_pin", hash_secret(pin))
            kv.put(conn, "setup_pin_failures", "0")
        return pin

    def setup_admin(self, pin: str, username: str, password: str) -> User:
        """Create the first admin, if ``pin`` is the set-up PIN. Five wrong PINs void it."""
        if self.any_users():
            raise AccountError("the box is already set up; log in instead")
        pin_hash = kv.get(self.db.conn, "setup_pin")
        if pin_hash is None:
            raise AccountError("there is no set-up PIN yet: restart the box to show one")
        if not check_secret(pin.strip(), pin_hash):
            with self.db.atomic() as conn:
                failures = int(kv.get(conn, "setup_pin_failures") or 0) + 1
                kv.put(conn, "setup_pin_failures", str(failures))
                if failures >= MAX_FAILURES:
                    kv.delete(conn, "setup_pin")
            if failures >= MAX_FAILURES:
                raise AccountError("too many wrong PINs: that PIN no longer works; restart the box for a new one")
            raise AccountError("that is not the set-up PIN shown on the box")
        user = self.create(username, password, "admin")
        with self.db.atomic() as conn:
            kv.delete(conn, "setup_pin", "setup_pin_failures")
        return user

    # --- API tokens ----------------------------------------------------------------------

    def new_token(self, name: str) -> str:
        """Make a token for ``name`` (e.g. "POS"); the plain token is returned once and not kept."""
        if not name.strip():
            raise AccountError("give the token a name, such as the system that will use it")
        token = "sg_" + secrets.token_urlsafe(32)
        with self.db.atomic() as conn:
            conn.execute("INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                         (name.strip(), token_digest(token), self.clock.time()))
        return token

    def check_token(self, token: str) -> str | None:
        """The token's name if it is valid, else None."""
        client = self.api_client(token)
        return client.name if client else None

    def api_client(self, token: str) -> "ApiClient | None":
        """Who calls with this token (its id and name), or None for a token that is not valid."""
        row = self.db.execute("SELECT id, name FROM api_tokens WHERE token_hash = ?",
                              (token_digest(token),)).fetchone()
        if row is None:
            return None
        with self.db.atomic() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (self.clock.time(), row["id"]))
        return ApiClient(row["id"], row["name"])

    def tokens(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT id, name, created_at, last_used_at FROM api_tokens"
                                                 " ORDER BY id")]

    def revoke_token(self, token_id: int) -> None:
        with self.db.atomic() as conn:
            conn.execute("DELETE FROM api_tokens WHERE id = ?", (token_id,))


def check_password(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if username and password.lower() == username.lower():
        raise AccountError("the password must not be the username")
