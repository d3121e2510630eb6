"""Rule documents as other tools write them, made acceptable to pySigma before it validates.

pySigma refuses a rule for problems that do not change what it detects; Hayabusa, whose
rule repository analysts bring, runs those rules. Each such problem is fixed in the
document pySigma sees and kept as a *warning* of the rule (`rules list` shows them):

* a tag without a namespace (`sysmon`, `lolbas`, `malware`): left out of pySigma's tags,
  kept with the rule's tags as written;
* `references` given as one string: made a list;
* an `id` that is not a UUID: the rule keeps it as its id, pySigma gets none;
* a number under a text modifier (`ImpersonationLevel|contains: 1833`): its text;
* no `condition` but a single detection: that detection is the condition;
* the deprecated aggregation syntax `selection | count(F) by G > N` with `timeframe: T`
  (Hayabusa's count rules, Sigma 1's aggregations): the same meaning as Sigma 2's
  correlations, so the document becomes a rule for `selection` (its events are
  counted) plus a `value_count` (with F) or `event_count` correlation over it, `group-by`
  G, `timespan` T, condition `gt: N`.

A Sigma field that YAML 1.1 would read as a boolean (`no`, `yes`, `on`, `off`) stays text:
the loader (`load.py`) resolves only `true`/`false` as booleans, as YAML 1.2 and Hayabusa do
(`CommandLine|contains|all: [recoveryenabled, no]`).
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field

#: Aggregations of the deprecated condition syntax: `expr | count(field) by a, b op n`.
_AGGREGATION = re.compile(
    r"^(?P<expr>.+?)\s*\|\s*count\(\s*(?P<field>[^)]*?)\s*\)"
    r"(?:\s+by\s+(?P<by>[^<>=!]+?))?\s*(?P<op>==|>=|<=|>|<)\s*(?P<n>\d+)\s*$",
    re.DOTALL,
)
_TEXT_MODIFIERS = {"contains", "startswith", "endswith", "windash", "re", "cased", "wide"}
_OPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "eq"}
#: Timespan of a converted aggregation that had no `timeframe` (Hayabusa: the whole log).
UNBOUNDED = "36500d"
_NAMESPACE = uuid.UUID("3b0b6c1e-2f7a-4d7e-9a55-5a1c0ffee000")


@dataclass
class Normalised:
    """The documents pySigma gets for one YAML document, and what was changed."""

    rule: dict  # the rule document (detection without aggregation)
    correlation: dict | None = None  # a converted aggregation
    warnings: list[str] = field(default_factory=list)
    uid: str | None = None  # the id as written, when it is not a UUID
    tags: list[str] = field(default_factory=list)  # every tag as written


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _tags(doc: dict, out: Normalised) -> None:
    tags = doc.get("tags")
    if tags is None:
        return
    if not isinstance(tags, list):
        tags = [tags]
    out.tags = [str(t) for t in tags]
    bare = [t for t in out.tags if "." not in t]
    if bare:
        out.warnings.append(f"tags without a namespace: {', '.join(bare)}")
        doc["tags"] = [t for t in out.tags if "." in t]


def _common(doc: dict, out: Normalised) -> None:
    """Fixes that apply to rules and correlation rules alike."""
    if isinstance(doc.get("references"), str):
        doc["references"] = [doc["references"]]
        out.warnings.append("references is one string, not a list")
    rule_id = doc.get("id")
    if rule_id is not None and not _is_uuid(rule_id):
        out.uid = str(rule_id)
        del doc["id"]
        out.warnings.append(f"id {rule_id!r} is not a UUID")
    _tags(doc, out)


def _texts(value: object) -> object:
    if isinstance(value, list):
        return [_texts(v) for v in value]
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _numbers_as_text(node: object, out: Normalised) -> None:
    """`ImpersonationLevel|contains: 1833`: a text modifier on a number means its text."""
    items = node if isinstance(node, list) else [node]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            modifiers = set(str(key).split("|")[1:])
            if modifiers & _TEXT_MODIFIERS and _texts(value) != value:
                item[key] = _texts(value)
                out.warnings.append(f"{key}: a number given to a text modifier, read as text")


def _missing_condition(detection: dict, out: Normalised) -> None:
    names = [k for k in detection if k not in ("condition", "timeframe")]
    if "condition" not in detection and len(names) == 1:
        detection["condition"] = names[0]
        out.warnings.append(f"no condition: the only detection {names[0]!r} is used")


def _aggregation(doc: dict, detection: dict, out: Normalised) -> None:
    """A deprecated `| count()` condition becomes a base rule plus a correlation rule."""
    condition = detection.get("condition")
    found = _AGGREGATION.match(condition) if isinstance(condition, str) else None
    if found is None:
        return
    timeframe = detection.pop("timeframe", None)
    detection["condition"] = found["expr"].strip()
    rule_id = str(doc.get("id") or out.uid or doc.get("title", ""))
    base_id = str(uuid.uuid5(_NAMESPACE, rule_id))
    correlation = {
        key: copy.deepcopy(doc[key])
        for key in ("title", "id", "status", "level", "description", "author", "date", "tags")
        if key in doc
    }
    by = [name.strip() for name in (found["by"] or "").split(",") if name.strip()]
    measured = found["field"].strip()
    correlation["correlation"] = {
        "type": "value_count" if measured else "event_count",
        "rules": [base_id],
        "timespan": str(timeframe or UNBOUNDED),
        "condition": {
            _OPS[found["op"]]: int(found["n"]),
            **({"field": measured} if measured else {}),
        },
        **({"group-by": by} if by else {}),
    }
    if out.uid is not None:
        correlation.pop("id", None)
    doc["id"] = base_id
    doc["name"] = f"{base_id}-counted"
    doc["title"] = f"{doc.get('title', '')} (counted events)"
    doc["level"] = "informational"
    out.correlation = correlation
    kind = correlation["correlation"]["type"]
    window = f"within {timeframe}" if timeframe else "over the whole log (no timeframe)"
    out.warnings.append(f"deprecated count condition: run as a {kind} correlation {window}")


def normalise(doc: dict) -> Normalised:
    """The documents pySigma should get for `doc` (copied, never changed in place)."""
    doc = copy.deepcopy(doc)
    out = Normalised(doc)
    _common(doc, out)
    detection = doc.get("detection")
    if isinstance(detection, dict):
        for name, selection in detection.items():
            if name not in ("condition", "timeframe"):
                _numbers_as_text(selection, out)
        _missing_condition(detection, out)
        _aggregation(doc, detection, out)
    if out.correlation is not None and out.uid is not None:
        out.correlation["id"] = str(uuid.uuid5(_NAMESPACE, out.uid + "/correlation"))
    return out


def normalise_correlation(doc: dict) -> tuple[dict, list[str]]:
    """A correlation rule document with the common fixes; its warnings."""
    doc = copy.deepcopy(doc)
    out = Normalised(doc)
    _common(doc, out)
    return doc, out.warnings
