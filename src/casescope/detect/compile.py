"""Turn a processed pySigma condition into a small boolean tree over interned atoms.

Tree nodes are tuples led by their `Tag`: `(Tag.ATOM, atom_id)`, `(Tag.AND, children)`,
`(Tag.OR, children)`, `(Tag.NOT, child)`, and the constants `TRUE` / `FALSE`. Builders
flatten and simplify, so two pipelines that produce the same condition produce the same
tree (and are evaluated once).
"""

from __future__ import annotations

from enum import StrEnum

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from casescope.detect.atoms import (
    KEYWORDS,
    Atom,
    AtomTable,
    CompareOp,
    CompileError,
    FieldRefOp,
    Kind,
    check_regex,
    escape,
    field_key,
)


class Tag(StrEnum):
    """What a tree node is: the first element of its tuple."""

    ATOM = "a"
    AND = "&"
    OR = "|"
    NOT = "!"
    TRUE = "T"
    FALSE = "F"


Node = tuple
TRUE: Node = (Tag.TRUE,)
FALSE: Node = (Tag.FALSE,)
STAR = SpecialChars.WILDCARD_MULTI
_OPS = {"LT": CompareOp.LT, "LTE": CompareOp.LE, "GT": CompareOp.GT, "GTE": CompareOp.GE}
MAX_OR_CLAUSES = 6  # clauses an OR passes up (see `required`)
_FIELDREF_OPS = {
    (False, False): FieldRefOp.EQ,
    (True, False): FieldRefOp.PREFIX,
    (False, True): FieldRefOp.SUFFIX,
}


def and_(children: list[Node], table: AtomTable | None = None) -> Node:
    """AND of `children`; with `table`, FALSE when two of them require different values of
    one field (`EventID: 1` and `EventID: 4688`): an event holds one value per field (the
    first wins), so no event can match. A pipeline variant that adds a log source the rule
    contradicts (a Hayabusa rule's own `Channel: …Sysmon/Operational` under the Security
    variant) is dropped here instead of being evaluated."""
    node = _join(Tag.AND, children, absorbing=FALSE, neutral=TRUE)
    if table is not None and node[0] is Tag.AND and _contradicts(node[1], table):
        return FALSE
    return node


def _contradicts(children: tuple[Node, ...], table: AtomTable) -> bool:
    required: dict[str, str] = {}
    for child in children:
        if child[0] is not Tag.ATOM:
            continue
        atom = table.atoms[child[1]]
        if atom.kind is not Kind.EQ or atom.cased or atom.field == KEYWORDS:
            continue
        if required.setdefault(atom.field, atom.text) != atom.text:
            return True
    return False


def or_(children: list[Node]) -> Node:
    return _join(Tag.OR, children, absorbing=TRUE, neutral=FALSE)


def not_(child: Node) -> Node:
    if child == TRUE:
        return FALSE
    if child == FALSE:
        return TRUE
    return child[1] if child[0] is Tag.NOT else (Tag.NOT, child)


def _join(op: Tag, children: list[Node], absorbing: Node, neutral: Node) -> Node:
    flat: list[Node] = []
    seen: set[Node] = set()
    for child in children:
        if child == absorbing:
            return absorbing
        if child == neutral:
            continue
        for item in child[1] if child[0] is op else (child,):
            if item not in seen:
                seen.add(item)
                flat.append(item)
    if not flat:
        return neutral
    return flat[0] if len(flat) == 1 else (op, tuple(flat))


def _parts(value: SigmaString) -> list[object]:
    parts: list[object] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise CompileError(
                f"placeholder %{part.name}% has no value (the expand modifier needs a "
                "pipeline that defines it)"
            )
        if part == SpecialChars.WILDCARD_MULTI and parts and parts[-1] == STAR:
            continue
        parts.append(part)
    return parts


def _glob(key: str, parts: list[object], cased: bool, table: AtomTable) -> Node:
    norm = (lambda t: t) if cased else str.lower
    pattern = "".join(
        escape(norm(p)) if isinstance(p, str) else (".*" if p == STAR else ".") for p in parts
    )
    texts = [p.lower() for p in parts if isinstance(p, str)]
    hint = table.intern(Atom(key, Kind.CONTAINS, max(texts, key=len))) if texts else -1
    return (Tag.ATOM, table.intern(Atom(key, Kind.GLOB, f"(?s)^{pattern}$", cased, hint=hint)))


def string_node(key: str, value: SigmaString, table: AtomTable) -> Node:
    """A Sigma string (with wildcards) as a literal, glob, exists or empty atom."""
    return parts_node(key, _parts(value), isinstance(value, SigmaCasedString), table)


def parts_node(key: str, parts: list[object], cased: bool, table: AtomTable) -> Node:
    """String parts (text, `*`, `?`) as a literal, glob, exists or empty atom."""
    if parts == [STAR]:
        return (Tag.ATOM, table.intern(Atom(key, Kind.EXISTS)))
    if not parts or parts == [""]:
        return (Tag.ATOM, table.intern(Atom(key, Kind.EMPTY)))
    if cased:
        return _glob(key, parts, cased, table)
    texts = [p for p in parts if isinstance(p, str)]
    shape = tuple("s" if isinstance(p, str) else ("*" if p == STAR else "?") for p in parts)
    kind = {
        ("s",): Kind.EQ,
        ("s", "*"): Kind.PREFIX,
        ("*", "s"): Kind.SUFFIX,
        ("*", "s", "*"): Kind.CONTAINS,
    }.get(shape)
    if kind is None:
        return _glob(key, parts, cased, table)
    return (Tag.ATOM, table.intern(Atom(key, kind, texts[0].lower())))


def _regex(key: str, value: SigmaRegularExpression, table: AtomTable) -> Node:
    names = {flag.name for flag in value.flags}
    flags = "".join(
        c for n, c in (("IGNORECASE", "i"), ("MULTILINE", "m"), ("DOTALL", "s")) if n in names
    )
    pattern = f"(?{flags}){value.regexp}" if flags else str(value.regexp)
    python = not check_regex(pattern)
    return (Tag.ATOM, table.intern(Atom(key, Kind.REGEX, pattern, cased=True, python=python)))


def _cidr(key: str, value: SigmaCIDRExpression, table: AtomTable) -> Node:
    nodes = []
    for pattern in value.expand(wildcard="*"):
        text = str(pattern).lower()
        if text.endswith("*"):
            prefix = text.rstrip("*")
            atom = Atom(key, Kind.PREFIX, prefix) if prefix else Atom(key, Kind.EXISTS)
        else:
            atom = Atom(key, Kind.EQ, text)
        nodes.append((Tag.ATOM, table.intern(atom)))
    return or_(nodes)


def value_node(key: str, value: object, table: AtomTable) -> Node:
    """One `field = value` test (after modifiers) as a tree."""
    if isinstance(value, SigmaExpansion):  # e.g. windash, base64offset: any alternative
        return or_([value_node(key, v, table) for v in value.values])
    if isinstance(value, SigmaString):
        return string_node(key, value, table)
    if isinstance(value, SigmaTimestampPart):
        raise CompileError("timestamp part modifiers (|minute, |hour…) are not supported")
    if isinstance(value, SigmaNumber):
        return (Tag.ATOM, table.intern(Atom(key, Kind.EQ, str(value.number).lower())))
    if isinstance(value, SigmaBool):
        return (Tag.ATOM, table.intern(Atom(key, Kind.EQ, str(value.boolean).lower())))
    if isinstance(value, SigmaRegularExpression):
        return _regex(key, value, table)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr(key, value, table)
    if isinstance(value, SigmaNull):
        return (Tag.ATOM, table.intern(Atom(key, Kind.NULL)))
    if isinstance(value, SigmaExists):
        return (Tag.ATOM, table.intern(Atom(key, Kind.EXISTS if value.exists else Kind.MISSING)))
    if isinstance(value, SigmaCompareExpression):
        atom = Atom(key, Kind.CMP, op=_OPS[value.op.name], number=float(value.number.number))
        return (Tag.ATOM, table.intern(atom))
    if isinstance(value, SigmaFieldReference):
        op = _FIELDREF_OPS.get((value.starts_with, value.ends_with), FieldRefOp.CONTAINS)
        atom = Atom(key, Kind.FIELDREF, op=op, ref=field_key(value.field))
        return (Tag.ATOM, table.intern(atom))
    raise CompileError(f"value type {type(value).__name__} is not supported")


def keyword_node(value: object, table: AtomTable) -> Node:
    """A field-less value: found anywhere in one of the event's values."""
    if isinstance(value, SigmaExpansion):
        return or_([keyword_node(v, table) for v in value.values])
    if isinstance(value, SigmaString):
        parts = [STAR, *_parts(value), STAR]
        parts = [p for i, p in enumerate(parts) if not (p == STAR and i and parts[i - 1] == STAR)]
        return parts_node(KEYWORDS, parts, isinstance(value, SigmaCasedString), table)
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
        return (Tag.ATOM, table.intern(Atom(KEYWORDS, Kind.CONTAINS, str(value.number).lower())))
    if isinstance(value, SigmaRegularExpression):
        return _regex(KEYWORDS, value, table)
    raise CompileError(f"keyword of type {type(value).__name__} is not supported")


def condition_node(node: object, table: AtomTable) -> Node:
    """A parsed pySigma condition (detection items resolved) as a tree."""
    if isinstance(node, ConditionAND):
        return and_([condition_node(a, table) for a in node.args], table)
    if isinstance(node, ConditionOR):
        return or_([condition_node(a, table) for a in node.args])
    if isinstance(node, ConditionNOT):
        return not_(condition_node(node.args[0], table))
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return value_node(field_key(node.field), node.value, table)
    if isinstance(node, ConditionValueExpression):
        return keyword_node(node.value, table)
    raise CompileError(f"condition element {type(node).__name__} is not supported")


def required(node: Node) -> list[frozenset[int]]:
    """Necessary conditions of a tree: clauses of atom ids, one atom of each must hold.

    AND keeps all its children's clauses. OR needs one child, so any union of one clause
    per child is necessary: the i-th union takes every child's i-th shortest clause (its
    last one when it has fewer), which pairs like with like when the children are the same
    rule under two pipelines (EventID with EventID, selection with selection). A child
    without clauses makes the OR yield none; NOT yields none.
    """
    tag = node[0]
    if tag is Tag.ATOM:
        return [frozenset((node[1],))]
    if tag in (Tag.NOT, Tag.TRUE, Tag.FALSE):
        return []
    if tag is Tag.AND:
        return [clause for child in node[1] for clause in required(child)]
    per_child = []
    for child in node[1]:
        clauses = sorted(required(child), key=len)
        if not clauses:
            return []
        per_child.append(clauses)
    width = min(max(len(c) for c in per_child), MAX_OR_CLAUSES)
    return [frozenset().union(*(c[min(i, len(c) - 1)] for c in per_child)) for i in range(width)]


def tree_atoms(node: Node, out: set[int]) -> set[int]:
    """Every atom id a tree reads."""
    if node[0] is Tag.ATOM:
        out.add(node[1])
    elif node[0] is Tag.NOT:
        tree_atoms(node[1], out)
    elif node[0] in (Tag.AND, Tag.OR):
        for child in node[1]:
            tree_atoms(child, out)
    return out


def equal_values(clauses: list[frozenset[int]], table: AtomTable, key: str) -> set[str] | None:
    """Values of field `key` the rule requires (from clauses of plain equalities), or None."""
    found: set[str] | None = None
    for clause in clauses:
        atoms = [table.atoms[i] for i in clause]
        if all(a.field == key and a.kind is Kind.EQ for a in atoms):
            values = {a.text for a in atoms}
            found = values if found is None else found & values
    return found
