"""The state's schema: one list of migrations for both databases (SQLite as written,
PostgreSQL through :func:`caldaemon.state.postgres.translate_ddl`), applied in order
by :meth:`caldaemon.state.db.State._migrate`; the version is their count."""

from __future__ import annotations

SCHEMA_VERSION = 7

# Each entry upgrades the schema by one version; never edit a released entry, add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calendars (
        clinician TEXT NOT NULL, calendar TEXT NOT NULL,
        token TEXT, window_start TEXT, window_end TEXT, vocabulary TEXT,
        last_success TEXT, last_error TEXT, last_error_at TEXT, failing_since TEXT,
        paused TEXT, empty_reads INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (clinician, calendar));
    CREATE TABLE events (
        clinician TEXT NOT NULL, calendar TEXT NOT NULL, id TEXT NOT NULL,
        start TEXT NOT NULL, end TEXT NOT NULL, all_day INTEGER NOT NULL,
        tags TEXT NOT NULL, color TEXT, cancelled INTEGER NOT NULL, busy INTEGER NOT NULL,
        declined INTEGER NOT NULL, owner TEXT, series TEXT, etag TEXT, title_matches INTEGER,
        PRIMARY KEY (clinician, calendar, id));
    CREATE TABLE buffers (
        clinician TEXT NOT NULL, identity TEXT NOT NULL, calendar TEXT NOT NULL,
        remote_id TEXT NOT NULL, etag TEXT, start TEXT NOT NULL, end TEXT NOT NULL,
        title TEXT NOT NULL, after TEXT NOT NULL, status TEXT NOT NULL,
        pending_start TEXT, pending_end TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (clinician, identity));
    CREATE TABLE violations (
        clinician TEXT NOT NULL, fingerprint TEXT NOT NULL, rule TEXT NOT NULL,
        severity TEXT NOT NULL, date TEXT NOT NULL, start TEXT NOT NULL, end TEXT NOT NULL,
        message TEXT NOT NULL, events TEXT NOT NULL, level TEXT, kind TEXT,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, last_notified TEXT,
        resolved_at TEXT, resolution_notified INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (clinician, fingerprint));
    CREATE TABLE outbox (
        message_id TEXT PRIMARY KEY, clinician TEXT, recipient TEXT NOT NULL,
        subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT NOT NULL,
        created TEXT NOT NULL, not_before TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending', last_error TEXT, sent_at TEXT);
    CREATE TABLE problems (
        key TEXT PRIMARY KEY, message TEXT NOT NULL, first_seen TEXT NOT NULL,
        notified_at TEXT);
    CREATE TABLE digests (clinician TEXT PRIMARY KEY, last_sent TEXT NOT NULL);
    """,
    # 2: ownership from content (DESIGN.md §5): a buffer's generation; of each cached event
    # whether it carries a marker, and the digest of its content. Tokens are dropped so
    # the next cycle lists every calendar in full and fills the digests.
    """
    ALTER TABLE buffers ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN marked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN digest TEXT;
    UPDATE events SET marked = 1 WHERE owner IS NOT NULL;
    UPDATE calendars SET token = NULL;
    """,
    # 3: keeping boundaries (DESIGN.md §10): the classification rules an event's title
    # matched (its title is not kept); levels the clinician marked; accepted violations.
    """
    ALTER TABLE events ADD COLUMN title_rules TEXT;
    ALTER TABLE violations ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE marks (
        clinician TEXT NOT NULL, key TEXT NOT NULL, level TEXT NOT NULL,
        created TEXT NOT NULL, PRIMARY KEY (clinician, key));
    CREATE TABLE acks (
        clinician TEXT NOT NULL, fingerprint TEXT NOT NULL, until TEXT,
        created TEXT NOT NULL, PRIMARY KEY (clinician, fingerprint));
    UPDATE calendars SET vocabulary = NULL;
    """,
    # 4: history for ``caldaemon hours`` (DESIGN.md §11): past events are kept for
    # ``daemon.keep_history`` with the kind and level they were given (the title, which
    # decided them, is never kept); per calendar, since when the cache holds every event
    # (before that, ``hours`` reads the calendar live). Out of office is kept too, so a
    # cached event is classified as the live one is. The index serves the window's query,
    # which now runs over a year of rows.
    """
    ALTER TABLE calendars ADD COLUMN history_from TEXT;
    ALTER TABLE events ADD COLUMN out_of_office INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN kind TEXT;
    ALTER TABLE events ADD COLUMN level TEXT;
    CREATE INDEX events_by_end ON events (clinician, end);
    UPDATE calendars SET token = NULL;
    """,
    # 5: the weekly report (DESIGN.md §11): a notice may carry its picture, a PNG shown
    # inline in the HTML part (dropped with the text once the notice is delivered).
    """
    ALTER TABLE outbox ADD COLUMN image BLOB;
    """,
    # 6: several instances on one PostgreSQL state (issue 15): which instance holds each
    # clinician until when, the live instances, and which one is delivering a notice
    # until when (unused by a single instance on SQLite).
    """
    CREATE TABLE leases (
        clinician TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TEXT NOT NULL);
    CREATE TABLE holders (holder TEXT PRIMARY KEY, expires TEXT NOT NULL);
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
    """,
    # 7: a violation read back is the one that was judged: its subject (what its fingerprint
    # is made from; what a digest merges a session's boundaries by) and its phrase (its
    # clause in a merged line). Both hold no event text (DESIGN.md §7): a subject is event
    # keys (``calendar/uid@stamp``), a period or a kind; a phrase times, kinds, levels,
    # counts and a buffer's configured title (caldaemon/core/rules/*.py, Context.violation).
    # Rows from before stay NULL until their violation is seen again
    # (caldaemon.state.violations).
    """
    ALTER TABLE violations ADD COLUMN subject TEXT;
    ALTER TABLE violations ADD COLUMN phrase TEXT;
    """,
)
