"""Who may use the box: web accounts, the first-run set-up PIN, and API tokens.

There is no default password. Until the first admin exists, the web page
asks for one, and only someone who can read the one-time set-up PIN (on
the box's counter panel, or from ``smsgenie setup-pin`` on the box; never
in its log) may create it. Passwords and tokens are kept only as salted
scrypt hashes (the standard library's, no web framework needed). Wrong
passwords and PINs are slowed down (appliance/attempts.py); a refusal never
says whether the user exists. A password has at least 10 characters and is
not one of the common ones every guesser tries first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from appliance import kv
from appliance.attempts import Attempts
from appliance.clock import Clock
from appliance.db import Database
from appliance.errors import SmsGenieError
from appliance.text import say

ROLES = ("admin", "staff")
#: Wrong set-up PINs before the PIN stops working (a new one comes with the next start, or setup-pin --new).
MAX_FAILURES = 5
MIN_PASSWORD = 10
#: Passwords every guesser tries first (lower case; with and without digits and punctuation), refused.
COMMON_PASSWORDS = frozenset("""
password password1 password12 password123 password1234 passw0rd123 p@ssw0rd123 qwertyuiop qwertyuiop1
1234567890 0123456789 12345678910 1234567890a a1234567890 abcdefghij abcdefg123 abc1234567 1q2w3e4r5t
1qaz2wsx3edc qazwsxedcr asdfghjkl1 zxcvbnm123 iloveyou12 administrator admin12345 admin123456 welcome123
letmein123 changeme12 smsgenie123 woaini1314 woaini520520 5201314520 1314520520 aaaaaaaaaa 1111111111
0000000000 8888888888 6666666666 1234512345 1122334455 9876543210 147258369 1472583690 qwer123456
""".split())
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccountError(SmsGenieError, ValueError):
    """A username, password or role that cannot be used, said so plainly."""


class LoginRefused(SmsGenieError):
    """Wrong username or password, or too many wrong tries just now: wait."""


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


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    """A hash to check a password against when there is no such user: the same work either way."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_secret(secrets.token_hex(8)))
    return _DUMMY_HASH[0]


def waiting(seconds: float) -> str:
    if seconds < 90:
        return say("{n} seconds", n=f"{seconds:.0f}")
    return say("{n} minutes", n=f"{seconds / 60:.0f}")


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


#: What an API token may do: send messages, read the messages it sent, read every message, and send lists
#: that would wait for an admin's approval (appliance/approval.py) at once, as an admin's do.
SCOPES = ("send", "read-own", "read-all", "send-unapproved", "customers")
DEFAULT_SCOPES = ("send", "read-own")


@dataclass(frozen=True)
class ApiClient:
    """A shop system calling the API with one token."""

    id: int
    name: str
    scopes: frozenset[str] = frozenset(DEFAULT_SCOPES)

    @property
    def owner(self) -> str:
        """How the lists it queues name it."""
        return f"api:{self.id}"


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
            raise AccountError(say("a username is 1 to 32 characters without spaces"))
        if role not in ROLES:
            raise AccountError(say("the role is {roles}", roles=" or ".join(ROLES)))
        check_password(password, username)
        with self.db.atomic() as conn:
            if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise AccountError(say("there is already a user called {name}", name=repr(username)))
            cur = conn.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                               (username, hash_secret(password), role, self.clock.time()))
            return User(cur.lastrowid, username, role)

    def login(self, username: str, password: str, address: str = "local") -> User:
        """The user, or LoginRefused. Each try counts before the password is checked (per ``address`` and
        per account name, whether or not it exists); after a few wrong ones each must wait longer."""
        username = username.strip()
        keys = {f"address:{address}": "address", f"account:{username.lower()}": "account"}
        refused = Attempts(self.db, self.clock).begin(keys)
        if refused is not None:
            raise LoginRefused(say("too many wrong tries: wait {wait}, then try again", wait=waiting(refused.wait)))
        row = self.db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        if not check_secret(password, row["password_hash"] if row else _dummy_hash()) or row is None:
            raise LoginRefused(say("wrong username or password"))
        Attempts(self.db, self.clock).succeeded(keys)
        return User(row["id"], row["username"], row["role"])

    def unlock(self, username: str) -> bool:
        """Let an account's user try again at once (the technician's 'users unlock'); False: no such user."""
        if self.db.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone() is None:
            return False
        Attempts(self.db, self.clock).clear(f"account:{username.lower()}")
        return True

    def by_name(self, username: str) -> User | None:
        row = self.db.execute("SELECT id, username, role FROM users WHERE username = ?", (username,)).fetchone()
        return User(*row) if row else None

    def get(self, user_id: int) -> User | None:
        row = self.db.execute("SELECT id, username, role FROM users WHERE id = ?", (user_id,)).fetchone()
        return User(*row) if row else None

    def all(self) -> list[User]:
        return [User(*r) for r in self.db.execute("SELECT id, username, role FROM users ORDER BY username")]

    def change_password(self, user_id: int, old: str, new: str) -> None:
        row = self.db.execute("SELECT username, password_hash FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None or not check_secret(old, row["password_hash"]):
            raise AccountError(say("the current password is not right"))
        self.set_password(user_id, new)

    def set_password(self, user_id: int, new: str) -> None:
        row = self.db.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            raise AccountError(say("no such user"))
        check_password(new, row["username"])
        with self.db.atomic() as conn:  # a new password ends every session the old one opened
            conn.execute("UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = 0,"
                         " session_epoch = session_epoch + 1 WHERE id = ?", (hash_secret(new), user_id))

    def set_role(self, user_id: int, role: str) -> None:
        """Make a user admin or staff; their sessions end (they sign in again with the new rights)."""
        if role not in ROLES:
            raise AccountError(say("the role is {roles}", roles=" or ".join(ROLES)))
        with self.db.atomic() as conn:
            row = conn.execute("SELECT role FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise AccountError(say("no such user"))
            admins = conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]
            if row["role"] == "admin" and role != "admin" and admins <= 1:
                raise AccountError(say("this is the last admin; make another admin first"))
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
                raise AccountError(say("no such user"))
            admins = conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]
            if row["role"] == "admin" and admins <= 1:
                raise AccountError(say("this is the last admin; make another admin first"))
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # --- the first-run set-up PIN ----------------------------------------------------------

    def new_setup_pin(self) -> str:
        """A fresh six-digit PIN for the first admin. Kept in the box's private database so the counter
        panel and ``smsgenie setup-pin`` can show it; never written to a log."""
        pin = f"{secrets.randbelow(10**6):06d}"
        with self.db.atomic() as conn:
            kv.put(conn, "setup_pin", hash_secret(pin))
            kv.put(conn, "setup_pin_shown", pin)
            kv.put(conn, "setup_pin_failures", "0")
        return pin

    def setup_pin(self) -> str | None:
        """The set-up PIN while the box waits for its first admin, else None."""
        if self.any_users():
            return None
        return kv.get(self.db.conn, "setup_pin_shown")

    def setup_admin(self, pin: str, username: str, password: str) -> User:
        """Create the first admin, if ``pin`` is the set-up PIN. Five wrong PINs void it; each try is counted
        before the PIN is checked, so tries at the same moment get no more chances."""
        if self.any_users():
            raise AccountError(say("the box is already set up; log in instead"))
        with self.db.atomic() as conn:
            pin_hash = kv.get(conn, "setup_pin")
            failures = int(kv.get(conn, "setup_pin_failures") or 0) + 1
            if pin_hash is not None and failures > MAX_FAILURES:  # tries at the same moment as the last
                kv.delete(conn, "setup_pin", "setup_pin_shown")
                pin_hash = None
            elif pin_hash is not None:
                kv.put(conn, "setup_pin_failures", str(failures))
        if pin_hash is None:
            raise AccountError(say("there is no set-up PIN now: restart the box, or on the box run "
                                   "'smsgenie setup-pin --new'"))
        if not check_secret(pin.strip(), pin_hash):
            if failures >= MAX_FAILURES:
                with self.db.atomic() as conn:
                    kv.delete(conn, "setup_pin", "setup_pin_shown")
                raise AccountError(say("too many wrong PINs: that PIN no longer works; restart the box for a new one"))
            raise AccountError(say("that is not the set-up PIN shown on the box"))
        user = self.create(username, password, "admin")
        with self.db.atomic() as conn:
            kv.delete(conn, "setup_pin", "setup_pin_shown", "setup_pin_failures")
        return user

    # --- API tokens ----------------------------------------------------------------------

    def new_token(self, name: str, scopes=DEFAULT_SCOPES) -> str:
        """Make a token for ``name`` (e.g. "POS") that may do ``scopes`` (see :data:`SCOPES`); the plain
        token is returned once and not kept."""
        if not name.strip():
            raise AccountError(say("give the token a name, such as the system that will use it"))
        scopes = sorted(set(scopes))
        if not scopes or not set(scopes) <= set(SCOPES):
            raise AccountError(say("a token may do some of: {scopes}", scopes=", ".join(SCOPES)))
        token = "sg_" + secrets.token_urlsafe(32)
        with self.db.atomic() as conn:
            conn.execute("INSERT INTO api_tokens (name, token_hash, created_at, scopes) VALUES (?, ?, ?, ?)",
                         (name.strip(), token_digest(token), self.clock.time(), ",".join(scopes)))
        return token

    def check_token(self, token: str) -> str | None:
        """The token's name if it is valid, else None."""
        client = self.api_client(token)
        return client.name if client else None

    def api_client(self, token: str) -> "ApiClient | None":
        """Who calls with this token (its id and name), or None for a token that is not valid."""
        row = self.db.execute("SELECT id, name, scopes FROM api_tokens WHERE token_hash = ?",
                              (token_digest(token),)).fetchone()
        if row is None:
            return None
        with self.db.atomic() as conn:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (self.clock.time(), row["id"]))
        return ApiClient(row["id"], row["name"], frozenset(row["scopes"].split(",")))

    def tokens(self) -> list[dict]:
        return [{**dict(r), "scopes": r["scopes"].split(",")} for r in self.db.execute(
            "SELECT id, name, created_at, last_used_at, scopes FROM api_tokens ORDER BY id")]

    def revoke_token(self, token_id: int) -> None:
        with self.db.atomic() as conn:
            conn.execute("DELETE FROM api_tokens WHERE id = ?", (token_id,))


def check_password(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(say("a password needs at least {n} characters", n=MIN_PASSWORD))
    if username and username.lower() in password.lower():
        raise AccountError(say("the password must not contain the username"))
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        raise AccountError(say("that password is one guessers try first: choose another (a short sentence works)"))
