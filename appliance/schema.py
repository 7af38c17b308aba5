"""The database's schema, as named migrations applied in order (see appliance/db.py).

A migration is the change as it shipped and is never edited afterwards: a
box upgraded from any earlier version runs the ones it has not had, each in
the same transaction as its entry in the ``migrations`` table.

long-by-design: the schema's history in one place, in the order it ran; it
only grows (one short function per release that changed the database), and
splitting it would hide the order that matters.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []


def migration(name: str):
    """Register a migration; they run in the order they are defined."""
    def register(fn: Callable[[sqlite3.Connection], None]):
        MIGRATIONS.append((name, fn))
        return fn
    return register


def run_script(conn: sqlite3.Connection, sql: str) -> None:
    """Run ';'-separated statements inside the caller's transaction.

    (``executescript`` would commit first, which breaks a migration's atomicity.)
    """
    statement = ""
    for piece in sql.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):  # a ';' inside a comment or string does not end it
            conn.execute(statement)
            statement = ""
    if statement.strip(" \n;"):
        raise ValueError(f"incomplete SQL statement in a migration: {statement[:60]!r}")


@migration("0001_queue")
def _queue(conn: sqlite3.Connection) -> None:
    # long-by-design: a migration is the schema as it first shipped, one statement list, never edited after.
    run_script(conn, """
        CREATE TABLE send_list (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            service_code TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE message (
            id INTEGER PRIMARY KEY,
            send_list_id INTEGER REFERENCES send_list(id),
            recipient TEXT NOT NULL,
            text TEXT NOT NULL,
            encoding TEXT NOT NULL,
            segments INTEGER NOT NULL CHECK (segments >= 1),
            service_code TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN
                ('queued', 'sending', 'sent', 'delivered', 'failed', 'expired', 'uncertain')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            concat_ref INTEGER NOT NULL,
            error TEXT,
            created_at REAL NOT NULL,
            sending_at REAL,
            sent_at REAL,
            finished_at REAL
        );
        CREATE INDEX message_due ON message (state, next_attempt_at, id);
        CREATE INDEX message_list ON message (send_list_id, state);
        -- One row per SMS part the network accepted (+CMGS: <mr> received).
        CREATE TABLE segment (
            message_id INTEGER NOT NULL REFERENCES message(id),
            seq INTEGER NOT NULL,
            reference INTEGER,
            submitted_at REAL NOT NULL,
            status TEXT,
            status_code INTEGER,
            reported_at REAL,
            PRIMARY KEY (message_id, seq)
        );
        CREATE INDEX segment_reference ON segment (reference, submitted_at);
        CREATE TABLE inbound (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            sender TEXT NOT NULL,
            sent_at TEXT,
            text TEXT,
            concat_ref INTEGER,
            part INTEGER,
            parts INTEGER,
            problem TEXT,
            pdu TEXT NOT NULL UNIQUE
        );
        CREATE TABLE modem_status (
            port TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE unmatched_report (
            id INTEGER PRIMARY KEY,
            received_at REAL NOT NULL,
            reference INTEGER NOT NULL,
            recipient TEXT NOT NULL,
            status_code INTEGER NOT NULL
        );
    """)


@migration("0002_ledger")
def _ledger(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Every credit movement, in order. balance is the running balance after the
        -- entry; CHECK keeps it from ever going below zero.
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('topup', 'debit', 'refund', 'adjustment')),
            credits INTEGER NOT NULL,
            balance INTEGER NOT NULL CHECK (balance >= 0),
            message_id INTEGER REFERENCES message(id),
            code_serial TEXT,
            note TEXT
        );
        CREATE INDEX ledger_message ON ledger (message_id);
        -- Top-up codes already redeemed, by vendor key and serial: never twice.
        CREATE TABLE spent_code (
            key_id TEXT NOT NULL,
            serial TEXT NOT NULL,
            redeemed_at REAL NOT NULL,
            credits INTEGER NOT NULL,
            ledger_id INTEGER NOT NULL REFERENCES ledger(id),
            PRIMARY KEY (key_id, serial)
        );
        -- Credits debited by the message's current claim, refunded if it ends unsent.
        ALTER TABLE message ADD COLUMN claim_charge INTEGER NOT NULL DEFAULT 0
    """)


@migration("0003_compliance")
def _compliance(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Forbidden words: the vendor's signed list (replaced whole on import) and the shop's own.
        CREATE TABLE keyword (
            source TEXT NOT NULL CHECK (source IN ('vendor', 'local')),
            word TEXT NOT NULL,
            added_at REAL NOT NULL,
            note TEXT,
            PRIMARY KEY (source, word)
        );
        -- Customers who asked not to get texts, and every change to that list.
        CREATE TABLE opt_out (
            number TEXT PRIMARY KEY,
            added_at REAL NOT NULL,
            source TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE TABLE opt_out_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            number TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('add', 'remove')),
            source TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        -- The record kept for lawful queries: append-only, hash-chained.
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            event TEXT NOT NULL,
            message_id INTEGER,
            send_list_id INTEGER,
            recipient TEXT NOT NULL,
            content TEXT NOT NULL,
            service_code TEXT NOT NULL,
            outcome TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_at ON audit (at);
        CREATE INDEX audit_recipient ON audit (recipient);
        -- Where the chain starts after old rows were pruned past retention.
        CREATE TABLE audit_anchor (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pruned_to INTEGER NOT NULL,
            hash TEXT NOT NULL,
            at REAL NOT NULL
        );
        ALTER TABLE send_list ADD COLUMN template TEXT
    """)


@migration("0004_policy")
def _policy(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Routing by carrier, quiet hours by kind, schedules by start time.
        ALTER TABLE message ADD COLUMN carrier TEXT NOT NULL DEFAULT '';
        ALTER TABLE message ADD COLUMN kind TEXT NOT NULL DEFAULT 'marketing';
        ALTER TABLE send_list ADD COLUMN kind TEXT NOT NULL DEFAULT 'marketing';
        ALTER TABLE send_list ADD COLUMN start_at REAL;
        CREATE INDEX message_carrier_due ON message (state, carrier, next_attempt_at, id);
        -- One row per SMS part a modem's network accepted: what the caps count.
        CREATE TABLE send_log (
            id INTEGER PRIMARY KEY,
            modem TEXT NOT NULL,
            at REAL NOT NULL,
            recipient TEXT NOT NULL,
            message_id INTEGER
        );
        CREATE INDEX send_log_modem_at ON send_log (modem, at)
    """)


@migration("0005_web")
def _web(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- People who use the web page. No default account: the first admin is made at set-up.
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
            created_at REAL NOT NULL,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0
        );
        -- Tokens for a shop's POS or booking system (the REST API); only their hashes are kept.
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        -- A list staff paused holds its queued messages; a cancelled one fails them (never charged).
        ALTER TABLE send_list ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
        ALTER TABLE message ADD COLUMN held INTEGER NOT NULL DEFAULT 0
    """)


@migration("0006_progress_indexes")
def _progress_indexes(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- The sending pace and today's figures (appliance/progress.py) read these several times a
        -- second for the panel and the page: by index, not by scanning six months of messages.
        CREATE INDEX send_log_at ON send_log (at);
        CREATE INDEX message_sent_at ON message (sent_at);
        CREATE INDEX message_state_finished ON message (state, finished_at)
    """)


@migration("0007_intake_keys")
def _intake_keys(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- What was already queued under a key, so a double click, a resubmitted form or an API retry
        -- queues nothing twice (appliance/intake.py). key: "upload:<token>" or "api:<token id>:<key>".
        CREATE TABLE intake_key (
            key TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            send_list_id INTEGER REFERENCES send_list(id),
            answer TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX intake_key_created ON intake_key (created_at)
    """)


@migration("0008_sessions")
def _sessions(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Ids are never given out twice (AUTOINCREMENT): a deleted user's cookie, or a revoked token's
        -- idempotency keys, must never belong to someone else. session_epoch ends a user's sessions on
        -- every device when it moves on (logout, a new password, a new role).
        CREATE TABLE users_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
            created_at REAL NOT NULL,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            session_epoch INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO users_new (id, username, password_hash, role, created_at, failed_logins, locked_until)
            SELECT id, username, password_hash, role, created_at, failed_logins, locked_until FROM users;
        DROP TABLE users;
        ALTER TABLE users_new RENAME TO users;
        CREATE TABLE api_tokens_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        INSERT INTO api_tokens_new SELECT id, name, token_hash, created_at, last_used_at FROM api_tokens;
        DROP TABLE api_tokens;
        ALTER TABLE api_tokens_new RENAME TO api_tokens
    """)


@migration("0009_long_writes")
def _long_writes(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- The messages a modem may take, and only those, so a paused list of a million held messages
        -- costs a claim nothing. Pausing, resuming and cancelling change the list at once and its
        -- messages in small batches (appliance/sendlists.py), never in one long write.
        CREATE INDEX message_ready ON message (next_attempt_at, id) WHERE state = 'queued' AND held = 0;
        CREATE INDEX message_ready_carrier ON message (carrier, next_attempt_at, id)
            WHERE state = 'queued' AND held = 0;
        -- ... and, by list, those still to hold (a list paused or cancelled) and those to free (resumed)
        CREATE INDEX message_list_free ON message (send_list_id) WHERE state = 'queued' AND held = 0;
        CREATE INDEX message_list_held ON message (send_list_id) WHERE state = 'queued' AND held = 1;
        ALTER TABLE send_list ADD COLUMN cancelled_by TEXT
    """)


@migration("0010_attempts")
def _attempts(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Failed logins and set-up PINs, per address and per account (appliance/attempts.py). The users
        -- table's failed_logins and locked_until are no longer used (an account locked for good was a
        -- lock anyone could set).
        CREATE TABLE attempt (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            next_at REAL NOT NULL,
            last_at REAL NOT NULL
        )
    """)


@migration("0011_least_privilege")
def _least_privilege(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Who queued a list ("user:<id>", "api:<token id>", "cli", "panel", "demo"): staff steer only
        -- their own lists, a token reads only the messages it sent (unless an admin allowed more).
        ALTER TABLE send_list ADD COLUMN created_by TEXT;
        -- What a token may do: "send", "read-own" (the messages it sent), "read-all".
        ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'send,read-own'
    """)


@migration("0012_record_by_message")
def _record_by_message(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- audit verify checks every sent or settled message has its row (a record cut short shows)
        CREATE INDEX audit_message ON audit (message_id)
    """)



@migration("0013_streamed_lists")
def _streamed_lists(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- A big list is written to the queue in short transactions while it is read (appliance/loading.py):
        -- its messages held, the list "loading" until the last row, then "active". loaded_at is its last
        -- batch: a list whose loader died (a power cut) is "discarded" and its messages deleted in batches.
        ALTER TABLE send_list ADD COLUMN loaded_at REAL;
        -- Superseded by message_ready / message_ready_carrier (0009), which the claim reads; every
        -- queued message paid for them twice over.
        DROP INDEX message_due;
        DROP INDEX message_carrier_due
    """)


@migration("0014_accountable_record")
def _accountable_record(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- Which modem (its label) and SIM (its ICCID) took a message: set when the modem claims it.
        ALTER TABLE message ADD COLUMN modem TEXT;
        ALTER TABLE message ADD COLUMN sim_iccid TEXT;
        -- Who approved (or declined) a list before it could go, and when; NULL when none was needed.
        ALTER TABLE send_list ADD COLUMN approved_by TEXT;
        ALTER TABLE send_list ADD COLUMN approved_at REAL;
        -- The record's second form (appliance/audit.py FIELDS_2): rows written from now on also say who
        -- queued and who approved, the modem and SIM, the template, the basis and the shop. Rows already
        -- written keep form 1 and verify as they were written, so the chain runs unbroken across.
        ALTER TABLE audit ADD COLUMN form INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE audit ADD COLUMN queued_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN modem TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN sim_iccid TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN template_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN basis TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN shop_name TEXT NOT NULL DEFAULT '';
        ALTER TABLE audit ADD COLUMN shop_licence TEXT NOT NULL DEFAULT ''
    """)


@migration("0015_receipts")
def _receipts(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- The receipt a top-up gave (appliance/receipt.py): the box's signed word on its record at that
        -- moment, to show again if the shop lost it.
        ALTER TABLE spent_code ADD COLUMN receipt TEXT
    """)


@migration("0016_number_carriers")
def _number_carriers(conn: sqlite3.Connection) -> None:
    run_script(conn, """
        -- A number's carrier as the network showed it, over what its prefix says (携号转网: a number keeps
        -- its prefix when it moves to another carrier): set by the shop, or learned (appliance/carriers.py).
        CREATE TABLE number_carrier (
            number TEXT PRIMARY KEY,
            carrier TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('manual', 'learned')),
            at REAL NOT NULL,
            note TEXT
        );
        -- A number its prefix's carrier's own SIM could not reach ("unknown subscriber"): the message is sent
        -- again through another carrier's SIM, and a delivery there teaches the number's carrier.
        CREATE TABLE carrier_doubt (
            number TEXT NOT NULL,
            failed_on TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (number, failed_on)
        )
    """)


@migration("0017_customer_book")
def _customer_book(conn: sqlite3.Connection) -> None:
    # long-by-design: a migration is the schema as it first shipped, one statement list, never edited after.
    run_script(conn, """
        -- The shop's customers (appliance/book.py): one row per number (E.164), with the consent state the
        -- marketing gate reads (appliance/consent.py) and the event that is its evidence.
        CREATE TABLE customer (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            birthday TEXT NOT NULL DEFAULT '',
            fields TEXT NOT NULL DEFAULT '{}',
            consent TEXT NOT NULL DEFAULT 'unknown' CHECK (consent IN ('unknown', 'given', 'refused')),
            consent_event INTEGER,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX customer_consent ON customer (consent);
        CREATE INDEX customer_birthday ON customer (substr(birthday, -5));
        CREATE TABLE customer_tag (
            number TEXT NOT NULL REFERENCES customer(number) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (tag, number)
        );
        CREATE INDEX customer_tag_number ON customer_tag (number);
        -- Every change of a customer's consent, with its evidence: the source (a paper form and its
        -- reference, an SMS sign-up, a double opt-in, the counter confirmed by SMS, an attested import, an
        -- opt-out by SMS or by the shop), who recorded it, and for SMS the inbound text's id.
        CREATE TABLE consent_event (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL,
            at REAL NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('unknown', 'given', 'refused')),
            source TEXT NOT NULL,
            reference TEXT NOT NULL DEFAULT '',
            recorded_by TEXT NOT NULL DEFAULT '',
            inbound_id INTEGER,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX consent_event_number ON consent_event (number, id);
        -- A question the box sent ("reply Y to receive..."): a reply from the same number before it expires
        -- answers it; the origin says how the customer came to be asked (the shop asked, they texted the
        -- sign-up word, or they said yes at the counter).
        CREATE TABLE consent_ask (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('asked', 'signup', 'counter')),
            message_id INTEGER,
            asked_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            asked_by TEXT NOT NULL DEFAULT '',
            answered_at REAL,
            answer TEXT CHECK (answer IN ('yes', 'no')),
            inbound_id INTEGER
        );
        CREATE INDEX consent_ask_open ON consent_ask (number, expires_at) WHERE answered_at IS NULL;
        -- Sends that come back (appliance/recurring.py): birthday greetings every day to the customers born
        -- on it, or a group's list monthly on a day or weekly on a weekday; each at a local hour. Every run,
        -- sent or skipped (and why), is a row: one per send and day, so a restart never sends it twice.
        CREATE TABLE recurring (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            every TEXT NOT NULL CHECK (every IN ('birthday', 'monthly', 'weekly')),
            day INTEGER,
            at_minute INTEGER NOT NULL CHECK (at_minute BETWEEN 0 AND 1439),
            tag TEXT,
            template TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('marketing', 'transactional')),
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE recurring_run (
            id INTEGER PRIMARY KEY,
            recurring_id INTEGER NOT NULL REFERENCES recurring(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            at REAL NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('queued', 'skipped')),
            send_list_id INTEGER,
            messages INTEGER NOT NULL DEFAULT 0,
            credits INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL DEFAULT '',
            UNIQUE (recurring_id, day)
        );
        -- The shop's saved message templates, with merge fields from the book ({姓名}, {积分}...).
        CREATE TABLE saved_template (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL DEFAULT ''
        );
        -- A keyword auto-reply owed (appliance/replies.py): the collector notes it, the daemon queues it.
        CREATE TABLE auto_reply (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL,
            inbound_id INTEGER,
            keyword TEXT NOT NULL,
            at REAL NOT NULL,
            message_id INTEGER
        );
        -- Why a message could go: "consent:<event id>", "transactional", or "paper" (the shop's setting
        -- relaxed the gate: it keeps consent on paper). The record writes it out.
        ALTER TABLE message ADD COLUMN basis TEXT;
        -- The opt-out list becomes part of the book: each number on it a customer who refused, each line
        -- of its log a consent event (nothing lost; the log's order kept).
        INSERT INTO consent_event (number, at, state, source, reference, recorded_by, note)
            SELECT number, at, CASE action WHEN 'add' THEN 'refused' ELSE 'unknown' END,
                   CASE source WHEN 'sms' THEN 'sms' ELSE 'manual' END, '', source, reason
            FROM opt_out_log ORDER BY id;
        INSERT INTO consent_event (number, at, state, source, recorded_by, note)
            SELECT o.number, o.added_at, 'refused', CASE o.source WHEN 'sms' THEN 'sms' ELSE 'manual' END,
                   o.source, o.reason FROM opt_out o
            WHERE NOT EXISTS (SELECT 1 FROM consent_event e WHERE e.number = o.number AND e.state = 'refused');
        INSERT INTO customer (number, consent, consent_event, created_at, created_by, updated_at, updated_by)
            SELECT o.number, 'refused',
                   (SELECT MAX(e.id) FROM consent_event e WHERE e.number = o.number AND e.state = 'refused'),
                   o.added_at, o.source, o.added_at, o.source
            FROM opt_out o;
        DROP TABLE opt_out;
        DROP TABLE opt_out_log
    """)
