"""A new config file written from a clinician's answers (``caldaemon init``, DESIGN.md §12):
the same keys as DESIGN.md §3, each with a comment that says what it does, as
config.example.yaml explains its own. Pure: answers in, YAML text out; the caller checks
the text with the real loader before writing it anywhere."""

from __future__ import annotations

import json
import re
from pathlib import PurePath

from caldaemon.config.init_answers import SECRET_KEYS, Answers, CalendarAnswer, ClinicianAnswer

# A value written without quotes only when it cannot be read back as anything else: no
# ':' or '#' (YAML syntax), not a number, a boolean or null, and not starting with a
# digit (an unquoted 09:30 is a number to YAML 1.1 tools, and an editor shows it so).
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]"
)


def scalar(value: str | int) -> str:
    """``value`` as a YAML scalar that reads back as exactly ``value``."""
    if isinstance(value, int):
        return str(value)
    if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED:
        return value
    # A JSON string is a YAML double-quoted scalar (YAML 1.2 §5.7 keeps JSON's escapes);
    # what YAML may not hold as it is (§5.1) or reads as a line break (§5.4) is escaped.
    quoted = json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _duration(value: str) -> str:
    """Durations like 15m and 14d are safe unquoted, and read better so."""
    return value if re.fullmatch(r"[0-9]+[a-z][0-9a-z]*", value) else scalar(value)


_HEADER = """\
# caldaemon configuration, written by `caldaemon init`.
#
# Change anything below to fit your practice. After each change, `caldaemon validate`
# tells you whether the file is right, and if not exactly which line to fix;
# config.example.yaml in caldaemon's source shows every key there is.
#
# How to write values:
#   durations  15m, 90m, 1h30m, 14d, 2w      times of day  "09:30" (in quotes)
#   weekdays   mon tue wed thu fri sat sun   ranges of days  mon-thu, or mon,wed,fri
# Paths are written in full, so this file still works when it is copied or run from
# elsewhere. Passwords and keys never go in this file: give the path of a file holding
# them (…_file) or an environment variable (…_env).
"""

_SYSTEM_HEADER = """\
# caldaemon configuration for the system service, written by `caldaemon init`.
#
# This file holds no secret: the service's own user (DynamicUser=yes) reads it, so it is
# mode 0644. Each key and password file is named bare (password_file: smtp-password):
# it sits beside this file, root's alone (mode 0600), and `caldaemon service install
# --system` hands it to the service with LoadCredential=, which the service finds in
# $CREDENTIALS_DIRECTORY; `sudo caldaemon doctor` reads it beside this file.
#
# After each change, `caldaemon validate` tells you whether the file is right, and if
# not exactly which line to fix; config.example.yaml shows every key there is.
#
# How to write values:
#   durations  15m, 90m, 1h30m, 14d, 2w      times of day  "09:30" (in quotes)
#   weekdays   mon tue wed thu fri sat sun   ranges of days  mon-thu, or mon,wed,fri
"""

_CLASSIFICATION = """\
classification:
  # How heavy a session is, from lightest to heaviest. The rules below use these names.
  levels: [low, moderate, high]
  # Each level's weight in max_daily_load (a high session counts 3, a moderate one 2…).
  weights: {low: 1, moderate: 2, high: 3}
  # The level of a session that carries no level tag or colour.
  default_level: moderate
  # Tags you write in titles or descriptions (#heavy or [heavy]), or use as Outlook
  # categories, and what they mean: a level above, or one of the kinds supervision,
  # peer_support, admin, personal, day_off (an all-day event: a day you keep free).
  tags:
    high: high
    heavy: high
    trauma: high
    moderate: moderate
    intake: moderate
    low: low
    light: low
    supervision: supervision
    consult: supervision
    peer_support: peer_support
    team: peer_support
    admin: admin
    notes: admin
    personal: personal
    selfcare: personal
    day_off: day_off
    off: day_off
    ok: accept          # #ok on an event: you know about this one, no notice for it
  # Event colours (Google Calendar colour names, or an .ics COLOR) and what they mean.
  colors: {tomato: high, banana: moderate}
  # Which events are client sessions: any of these makes an event a session.
  sessions:
    tagged: true        # it has a level tag or colour
    title_matches: '(?i)\\b(session|client|intake|therapy)\\b'   # its title says so
"""

_MORE_RULES = """\
    # More boundaries you can switch on (config.example.yaml explains each):
    # breaks: {after_sessions: 3, min_break: 30m}      a break after 3 sessions in a row
    # no_back_to_back: {level: high, min_gap: 60m}     time between heavy sessions
    # max_work_days_per_week: 4
    # max_daily_load: 12                               the day's total weight of sessions
    # double_booked: true                              two events at once, one a session
    # protect: {full_days: true}                       keep a full day off booking pages
"""


def _flow(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"


def _daemon(system: bool) -> list[str]:
    where = (
        [
            "  # sent): only caldaemon's own data, never what your appointments say. Left out,",
            "  # it is /var/lib/caldaemon, the system unit's StateDirectory= (sudo caldaemon",
            "  # doctor and status look there too).",
            "  # state_dir: /var/lib/caldaemon",
        ]
        if system
        else [
            "  # sent): only caldaemon's own data, never what your appointments say. Left out,",
            "  # it is ~/.local/state/caldaemon, or under systemd the service's StateDirectory=.",
            "  # state_dir: ~/.local/state/caldaemon",
        ]
    )
    return [
        "daemon:",
        "  # How often the service looks at your calendars for changes.",
        "  poll_interval: 2m",
        "  # How far ahead caldaemon checks your boundaries and places buffers.",
        "  horizon: 28d",
        "  # Where caldaemon keeps what it remembers (the buffers it placed, the notices it",
        *where,
        "  # true: only read and report; never write to a calendar or send an email.",
        "  dry_run: false",
        "",
    ]


def _secret(value: str, system: bool) -> str:
    return PurePath(value).name if system else value


def _calendar(calendar: CalendarAnswer, system: bool) -> list[str]:
    lines = [f"      - id: {scalar(calendar.id)}", f"        provider: {calendar.provider}"]
    for key, value, comment in calendar.keys:
        lines += [f"        # {comment}"] if comment else []
        written = _secret(value, system) if key in SECRET_KEYS else value
        lines.append(f"        {key}: {scalar(written)}")
    if calendar.use != "sessions":
        lines += [
            "        # It only blocks time; it holds no sessions.",
            f"        use: {calendar.use}",
        ]
    return lines


def _clinician(clinician: ClinicianAnswer, *, first: bool, system: bool) -> list[str]:
    lines = [
        f"  - id: {scalar(clinician.id)}   # a short name for --clinician on the command line",
    ]
    if clinician.name:
        lines.append(f"    name: {scalar(clinician.name)}   # how notices address them")
    if clinician.email:
        lines.append(f"    email: {scalar(clinician.email)}   # where notices go")
    lines.append("    rules: standard   # which set of boundaries below applies")
    if first:
        lines += [
            "    # overrides: {max_sessions_per_day: 5}   # change single rules just for one",
            "    # Where the appointments are. Providers: ics (a file or a feed), google,",
            "    # outlook (Microsoft 365), caldav. Sign in to google and outlook calendars",
            "    # with `caldaemon auth google|outlook --clinician ID` (not needed for a",
            "    # service account or client_credentials: the app signs in as itself).",
        ]
    lines.append("    calendars:")
    for calendar in clinician.calendars:
        lines += _calendar(calendar, system)
    if first:
        lines += [
            "    # The calendar that receives buffer blocks. caldaemon only ever adds, moves or",
            "    # removes its own blocks there, and leaves one you edit or delete alone.",
        ]
    if clinician.buffers_to:
        lines.append(f"    buffers_to: {scalar(clinician.buffers_to)}")
    else:
        lines.append("    # buffers_to: (none: caldaemon only reports, it never writes)")
    return lines


def _clinicians(answers: Answers) -> list[str]:
    lines = ["clinicians:"]
    for number, clinician in enumerate(answers.clinicians):
        lines += _clinician(clinician, first=number == 0, system=answers.system)
    return [*lines, ""]


def _limit(key: str, value: int | None, comment: str) -> list[str]:
    if value is None:
        return [f"    # {key}: (no limit)   {comment}"]
    return [f"    {key}: {value}   # {comment}"]


def _rules(answers: Answers) -> list[str]:
    ranges = ", ".join(scalar(r) for r in answers.working_hours)
    lines = [
        "rule_sets:",
        "  standard:",
        "    week_starts: mon",
        "    # When sessions may happen: a session must fit inside one range of its day.",
        '    # Different hours on some days: one line each, like fri: ["09:00-12:00"].',
        "    working_hours:",
        f"      {answers.working_days}: [{ranges}]",
        "    # Weekdays you keep free of sessions (an all-day event tagged #off adds a date).",
        f"    days_off: [{', '.join(answers.days_off)}]",
    ]
    lines += _limit("max_sessions_per_day", answers.max_sessions_per_day, "sessions in a day")
    lines += _limit("max_sessions_per_week", answers.max_sessions_per_week, "sessions in a week")
    high = [
        (key, scalar(value) if isinstance(value, str) else str(value))
        for key, value in (
            ("max_per_day", answers.high_per_day),
            ("max_per_week", answers.high_per_week),
            ("latest_start", answers.high_latest_start),
        )
        if value is not None
    ]
    lines.append("    # Limits for high-intensity sessions: how many a day and a week, and the")
    lines.append("    # latest time one may start.")
    if high:
        lines += ["    level_limits:", f"      high: {_flow(high)}"]
    else:
        lines.append("    # level_limits: {high: {max_per_day: 2}}   (none)")
    buffers = [
        (level, length, title)
        for level, length, title in (
            ("high", answers.grounding, "Grounding time"),
            ("moderate", answers.notes, "Notes"),
        )
        if length
    ]
    lines.append("    # Time kept free after sessions, placed on your calendar as busy blocks:")
    lines.append("    # grounding after a high-intensity session, notes after a moderate one.")
    lines.append("    # If something else is booked there already, you hear about it instead.")
    if buffers:
        lines.append("    buffers:")
        lines += [
            f"      - {_flow([('after', lvl), ('length', _duration(n)), ('title', scalar(t))])}"
            for lvl, n, t in buffers
        ]
    else:
        lines.append("    # buffers: [{after: high, length: 15m, title: Grounding time}]   (none)")
    lines.append("    # Supervision that should come back regularly; you hear when one is missing.")
    if answers.supervision_every:
        every = _duration(answers.supervision_every)
        lines += ["    cadence:", f"      - {{kind: supervision, every: {every}}}"]
        lines.append("      # - {kind: peer_support, every: 7d}   a weekly team debrief")
    else:
        lines.append("    # cadence: [{kind: supervision, every: 14d}]   (none)")
    return [*lines, _MORE_RULES]


def _notices(answers: Answers) -> list[str]:
    lines = [
        "notices:",
        "  # immediate: an email as soon as a boundary is crossed; digest: one a day.",
        "  mode: immediate",
        '  digest_at: "07:30"               # when the daily digest goes out',
        "  # Notices wait for your next working hours (false: send them at once).",
        "  quiet_outside_working_hours: true",
        "  repeat_after: 7d                 # remind you of something unresolved this often",
        "  # redacted: notices name times, kinds and levels, never what your events say;",
        "  # minimal: only weekdays and counts; full: event titles too.",
        "  privacy: redacted",
    ]
    smtp = answers.smtp
    if smtp is None:
        return [
            *lines,
            "  # No email settings: notices are written as files to a Maildir folder,",
            "  # 'notices' in the state_dir (any mail program can open it). To send email,",
            "  # run `caldaemon init` again or add (config.example.yaml shows every key):",
            "  # email:",
            "  #   from: caldaemon@example.org",
            "  #   smtp: {host: smtp.example.org, port: 587, security: starttls}",
        ]
    lines += [
        "  email:",
        f"    from: {scalar(smtp.sender)}   # the sender of every notice",
        "    smtp:",
        f"      host: {scalar(smtp.host)}",
        f"      port: {smtp.port}",
        f"      security: {smtp.security}   # starttls (587) or tls (465); certificates "
        "are always checked",
    ]
    if smtp.username:
        lines.append(f"      username: {scalar(smtp.username)}")
        lines.append(
            f"      password_file: {scalar(_secret(smtp.password_file or '', answers.system))}"
            "   # a file holding "
            "the password, nothing else"
        )
    return lines


def render(answers: Answers) -> str:
    """The config file for ``answers``, commented key by key."""
    parts = [
        _SYSTEM_HEADER if answers.system else _HEADER,
        "# Your time zone (an IANA name). Every rule is checked in local time, so a 17:00",
        "# limit stays 17:00 when the clocks change.",
        f"timezone: {scalar(answers.timezone)}",
        "",
        *_daemon(answers.system),
        _CLASSIFICATION,
        *_clinicians(answers),
        *_rules(answers),
        *_notices(answers),
    ]
    return "\n".join(parts).rstrip("\n") + "\n"
