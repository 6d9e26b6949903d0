"""The one registry of boundary rules: the rule-set key that switches a rule on, the rule
ids its violations carry (used in output and in ``severity``), and the checks that find
them. Config checking, ``validate`` and the evaluation all read it.

Adding a rule: its check (a pure function of a :class:`~.context.Context`) in the module of
its family, its value in :class:`~.settings.RuleSet`, and its line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from caldaemon.core.rules import cadence, counts, hours, sequence
from caldaemon.core.rules.context import Context
from caldaemon.core.rules.settings import SETTINGS_KEYS, RuleSet
from caldaemon.model import Violation

Check = Callable[[Context], Iterator[Violation]]


@dataclass(frozen=True)
class Rule:
    key: str
    ids: tuple[str, ...]
    checks: tuple[Check, ...]

    def on(self, rules: RuleSet) -> bool:
        """Whether a rule set asks for this rule: its key is given, and not as null or
        false (``double_booked: false`` checks nothing)."""
        value = getattr(rules, self.key)
        return self.key in rules.model_fields_set and value is not None and value is not False


RULES: tuple[Rule, ...] = (
    Rule("working_hours", ("working_hours",), (hours.working_hours,)),
    Rule("days_off", ("days_off",), (hours.days_off,)),
    Rule("max_work_days_per_week", ("max_work_days_per_week",), (counts.max_work_days_per_week,)),
    Rule("max_sessions_per_day", ("max_sessions_per_day",), (counts.max_sessions_per_day,)),
    Rule("max_sessions_per_week", ("max_sessions_per_week",), (counts.max_sessions_per_week,)),
    Rule(
        "level_limits",
        ("level_limits.max_per_day", "level_limits.max_per_week", "level_limits.latest_start"),
        (counts.level_per_day, counts.level_per_week, hours.latest_start),
    ),
    Rule("breaks", ("breaks",), (sequence.breaks,)),
    Rule("no_back_to_back", ("no_back_to_back",), (sequence.no_back_to_back,)),
    Rule("max_daily_load", ("max_daily_load",), (counts.max_daily_load,)),
    # Buffers are planned with their violations in one pass (:mod:`.buffers`).
    Rule("buffers", ("buffers",), ()),
    Rule("cadence", ("cadence",), (cadence.cadence,)),
    Rule("double_booked", ("double_booked",), (sequence.double_booked,)),
)

RULE_IDS: tuple[str, ...] = tuple(rule_id for rule in RULES for rule_id in rule.ids)
# What ``severity`` may name: a rule id, or a key whose rule has several (``level_limits``).
SEVERITY_KEYS: frozenset[str] = frozenset(RULE_IDS) | {rule.key for rule in RULES}

_unregistered = set(RuleSet.model_fields) - SETTINGS_KEYS - {rule.key for rule in RULES}
if _unregistered:  # a field in RuleSet without its line here would never be checked
    raise ImportError(f"rule set keys without a registered rule: {sorted(_unregistered)}")


def rules_on(rules: RuleSet) -> list[Rule]:
    return [rule for rule in RULES if rule.on(rules)]
