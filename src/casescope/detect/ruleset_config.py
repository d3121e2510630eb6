"""What a rule set's own config says: its field aliases, the rules it does not run.

Hayabusa's rule repository carries `config/` files beside its rules; two matter here.

**Field aliases** (`config/eventkey_alias.txt`).

Hayabusa rules name some fields by aliases its alias file defines (`ComputerName` is
`Event.System.Computer`, `RdsGtwErrorCode` is `Event.UserData.EventInfo.ErrorCode`,
`Message` is the whole `Event.EventData`). Most aliases are the field's own name (or differ
only by spaces, which `atoms.name_key` ignores); the others are kept per rule that uses
them (`aliases_for`) and applied as a pySigma field mapping before the log-source pipelines
(`pipelines.alias_pipeline`). The file is the rule set's data, read at import.

**Rules as written.** Hayabusa reads a rule's `logsource` as documentation: its rules
(and the SigmaHQ rules it rewrites per channel) state `Channel` and `EventID` in their
detection, with the field names of that channel. A set that carries Hayabusa's config is
compiled the same way (`LoadedRule.as_written`: no log-source pipeline), so a rule whose
`logsource` says `service: security` but whose detection says `Channel: OAlerts` runs on
OAlerts events, as Hayabusa runs it.

**Rules off by default.** Hayabusa does not run the rules listed in
`config/exclude_rules.txt` (replaced by its own) and `config/noisy_rules.txt`, nor rules
whose status is deprecated or unsupported. A set that carries these files is imported with
those rules disabled (`rules enable` turns them on), so it alerts as Hayabusa does.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from casescope.detect.atoms import field_key

logger = logging.getLogger(__name__)

ALIAS_FILE = Path("config") / "eventkey_alias.txt"
#: Rule ids the set does not run by default: replaced by other rules, or too noisy.
OFF_FILES = (Path("config") / "exclude_rules.txt", Path("config") / "noisy_rules.txt")
#: Statuses Hayabusa leaves out unless asked (`--include-deprecated/-unsupported`).
OFF_STATUSES = ("deprecated", "unsupported")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def parse_eventkey_aliases(text: str) -> dict[str, str]:
    """`alias,eventkey` lines -> {alias: eventkey} for aliases that name another field."""
    aliases: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        alias, sep, eventkey = (part.strip() for part in line.partition(","))
        if not sep or not alias or not eventkey:
            logger.warning("eventkey alias line %d is not alias,eventkey: %r", number, line)
            continue
        if field_key(alias) != field_key(eventkey):
            aliases.setdefault(alias, eventkey)
    return aliases


def read_eventkey_aliases(root: Path) -> dict[str, str]:
    """The aliases of the rule set at `root` (a folder), or none."""
    path = root / ALIAS_FILE
    if not root.is_dir() or not path.is_file():
        return {}
    return parse_eventkey_aliases(path.read_text(encoding="utf-8", errors="replace"))


def _fields(detection: SigmaDetection, out: set[str]) -> None:
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            _fields(item, out)
        elif isinstance(item, SigmaDetectionItem) and item.field:
            out.add(item.field)


def aliases_for(rule: SigmaRule, aliases: dict[str, str]) -> dict[str, str]:
    """The aliases `rule`'s detections use."""
    if not aliases:
        return {}
    used: set[str] = set()
    for detection in rule.detection.detections.values():
        _fields(detection, used)
    return {name: aliases[name] for name in sorted(used) if name in aliases}


@dataclass(frozen=True)
class RuleSetDefaults:
    """Rules a rule set does not run unless asked (only for sets that carry the files)."""

    ids: frozenset[str] = frozenset()
    statuses: tuple[str, ...] = ()

    def enabled(self, rule_id: str, status: str) -> bool:
        return rule_id not in self.ids and status not in self.statuses


def read_defaults(root: Path) -> RuleSetDefaults:
    """The rules `root` (a Hayabusa-style folder) leaves off by default; none otherwise."""
    files = [root / name for name in OFF_FILES] if root.is_dir() else []
    present = [path for path in files if path.is_file()]
    if not present:
        return RuleSetDefaults()
    ids = {
        found.group(0).lower()
        for path in present
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if (found := _UUID.match(line.strip()))
    }
    return RuleSetDefaults(frozenset(ids), OFF_STATUSES)


def runs_as_written(root: Path) -> bool:
    """Whether the set at `root` carries Hayabusa's config (rules as written)."""
    return root.is_dir() and (root / ALIAS_FILE).is_file()
