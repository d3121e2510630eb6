"""MITRE ATT&CK in Sigma tags: tactics and techniques of a rule, in kill-chain order.

Sigma rules name ATT&CK in their tags: `attack.execution` (a tactic, by its short name),
`attack.t1059.001` (a technique or sub-technique), `attack.g0016` / `attack.s0002` (a group
or software: not placed in the matrix). The enterprise tactics are a small, stable public
table kept here, in ATT&CK's matrix order. MITRE renamed TA0005 "Defense Evasion" to
"Stealth" and added TA0112 "Defense Impairment" (15 tactics); rules written before the
rename still say `attack.defense-evasion` or `attack.defense_evasion`, which are read as
TA0005. Technique names are not kept: they would need ATT&CK's STIX bundle, which this
offline tool does not download, so techniques are shown by id with a link to their page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tactic:
    id: str  # TA0002
    short: str  # execution (the tag's name, and the Navigator's tactic id)
    name: str  # Execution

    @property
    def url(self) -> str:
        return f"https://attack.mitre.org/tactics/{self.id}/"


#: The enterprise tactics, in the order ATT&CK's matrix shows them.
TACTICS: tuple[Tactic, ...] = (
    Tactic("TA0043", "reconnaissance", "Reconnaissance"),
    Tactic("TA0042", "resource-development", "Resource Development"),
    Tactic("TA0001", "initial-access", "Initial Access"),
    Tactic("TA0002", "execution", "Execution"),
    Tactic("TA0003", "persistence", "Persistence"),
    Tactic("TA0004", "privilege-escalation", "Privilege Escalation"),
    Tactic("TA0005", "stealth", "Stealth"),
    Tactic("TA0112", "defense-impairment", "Defense Impairment"),
    Tactic("TA0006", "credential-access", "Credential Access"),
    Tactic("TA0007", "discovery", "Discovery"),
    Tactic("TA0008", "lateral-movement", "Lateral Movement"),
    Tactic("TA0009", "collection", "Collection"),
    Tactic("TA0011", "command-and-control", "Command and Control"),
    Tactic("TA0010", "exfiltration", "Exfiltration"),
    Tactic("TA0040", "impact", "Impact"),
)
#: Tag names of tactics that ATT&CK renamed: the tactic they are now.
_RENAMED = {"defense-evasion": "stealth"}
_BY_NAME = {t.short: t for t in TACTICS}
_BY_NAME.update({old: _BY_NAME[new] for old, new in _RENAMED.items()})
_BY_ID = {t.id.lower(): t for t in TACTICS}

#: T1059 or T1059.001 (what a technique tag or filter may be, in any case).
TECHNIQUE_RE = re.compile(r"^t(\d{4})(?:\.(\d{3}))?$", re.IGNORECASE)
_OTHER_ATTACK = re.compile(r"^[gs]\d{4}$", re.IGNORECASE)  # groups, software


def tactic(text: str) -> Tactic | None:
    """The tactic a tag name (`initial-access`, `initial_access`, `Initial Access`) or an
    id (`TA0001`) names; None if none."""
    key = text.strip().lower().replace("_", "-").replace(" ", "-")
    return _BY_NAME.get(key) or _BY_ID.get(key)


def technique(text: str) -> str | None:
    """`T1059.001` for `t1059.001` (a technique or sub-technique id); None if not one."""
    match = TECHNIQUE_RE.match(text.strip())
    if match is None:
        return None
    number, sub = match.groups()
    return f"T{number}.{sub}" if sub else f"T{number}"


def parent(technique_id: str) -> str:
    """The technique of a sub-technique (`T1059` for `T1059.001`); a technique itself."""
    return technique_id.split(".", 1)[0]


def technique_url(technique_id: str) -> str:
    """The technique's page on attack.mitre.org (sub-techniques: `T1059/001/`)."""
    return "https://attack.mitre.org/techniques/" + technique_id.replace(".", "/") + "/"


@dataclass(frozen=True)
class AttackTags:
    """What a rule's tags say about ATT&CK."""

    tactics: tuple[Tactic, ...] = ()  # in matrix order
    techniques: tuple[str, ...] = ()  # sorted ids, sub-techniques as T1059.001
    others: tuple[str, ...] = ()  # attack.* tags that are neither (groups, software, ...)

    def has_technique(self, wanted: str) -> bool:
        """Whether the rule names `wanted` or, for a technique, one of its sub-techniques."""
        return any(t == wanted or parent(t) == wanted for t in self.techniques)


def parse_tags(tags: Iterable[str] | str) -> AttackTags:
    """The ATT&CK tactics and techniques among a rule's tags (a list, or the space-separated
    text kept in the rules table); tags of other namespaces (`cve.`, `car.`) are ignored."""
    items = tags.split() if isinstance(tags, str) else tags
    tactics: set[Tactic] = set()
    techniques: set[str] = set()
    others: list[str] = []
    for tag in items:
        namespace, _, name = tag.strip().partition(".")
        if namespace.lower() != "attack" or not name:
            continue
        if (found := tactic(name)) is not None:
            tactics.add(found)
        elif (tech := technique(name)) is not None:
            techniques.add(tech)
        else:
            others.append(name.upper() if _OTHER_ATTACK.match(name) else name)
    ordered = tuple(t for t in TACTICS if t in tactics)
    return AttackTags(ordered, tuple(sorted(techniques)), tuple(dict.fromkeys(others)))
