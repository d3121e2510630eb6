"""Match compiled IOCs against event batches, vectorised (no per-event Python).

Per batch: flatten the searchable values once (`values.batch_values`). One Aho-Corasick
pass (`str.contains_any`) keeps the values holding any IOC's literal; a second
(`str.extract_many`) on those says which literals each holds; each IOC's regex or CIDR test
then runs only on its own candidates. Regex IOCs, which have no literal, are scanned over
every value as one alternation per chunk, then tested one by one on what passed. Python
loops run per IOC, never per event.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from casescope.hunt.ioc import Ioc, IocError
from casescope.hunt.patterns import IPV4_CANDIDATE, IPV4_RUN, IocPattern, compile_pattern
from casescope.hunt.values import BatchValues, batch_values

#: What `IocMatcher.match` returns: one row per (event, IOC, field) hit.
HIT_SCHEMA = pa.schema(
    [
        pa.field("seq", pa.uint64(), nullable=False),
        pa.field("ioc_id", pa.int64(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
    ]
)

_PAIR_SCHEMA = {"u": pl.Int64, "p": pl.Int64}
#: Regex IOCs scanned together in one alternation.
_SCAN_CHUNK = 16


def compile_iocs(iocs: Sequence[Ioc]) -> IocMatcher:
    """Compile IOCs (each with a unique `id`) into a matcher reusable across batches."""
    ids = [ioc.id for ioc in iocs]
    if len(set(ids)) != len(ids):
        raise IocError("IOC ids must be unique within one matcher")
    return IocMatcher([compile_pattern(ioc) for ioc in iocs])


class IocMatcher:
    """Compiled IOCs; `match` finds them in batches of the event schema."""

    def __init__(self, patterns: Sequence[IocPattern]) -> None:
        self.patterns = list(patterns)
        self._ids = np.array([p.ioc_id for p in self.patterns], dtype=np.int64)
        literal_of = {i: p.literal for i, p in enumerate(self.patterns) if p.literal}
        self._literals = sorted(set(literal_of.values()))
        self._literal_table = pl.DataFrame(
            {"lit": list(literal_of.values()), "p": list(literal_of.keys())},
            schema={"lit": pl.String, "p": pl.Int64},
        )
        self._scanned = [i for i, p in enumerate(self.patterns) if not p.literal]
        if any(not self.patterns[i].on_original for i in self._scanned):
            raise IocError("only regex IOCs may lack a literal")  # patterns.py guarantees it
        cidrs = [(i, p.cidr) for i, p in enumerate(self.patterns) if p.cidr]
        self._cidr = pl.DataFrame(
            {
                "p": [i for i, _ in cidrs],
                "lo": [c[0] for _, c in cidrs],
                "hi": [c[1] for _, c in cidrs],
            },
            schema={"p": pl.Int64, "lo": pl.UInt64, "hi": pl.UInt64},
        )

    @property
    def ioc_ids(self) -> list[int]:
        return self._ids.tolist()

    def match(self, batch: pa.RecordBatch) -> pa.Table:
        """Every (seq, ioc_id, field) where an IOC matches a value of an event of `batch`."""
        if batch.num_rows == 0 or not self.patterns:
            return HIT_SCHEMA.empty_table()
        values = batch_values(batch)
        frames = [self._literal_hits(values.values)] if self._literals else []
        for start in range(0, len(self._scanned), _SCAN_CHUNK):
            frames.append(
                self._scan_hits(self._scanned[start : start + _SCAN_CHUNK], values.values)
            )
        hits = pl.concat(frames) if frames else pl.DataFrame(schema=_PAIR_SCHEMA)
        return self._entry_hits(values, hits)

    def _literal_hits(self, text: pl.Series) -> pl.DataFrame:
        """(entry, pattern) pairs for the IOCs that have a literal.

        The prefilter compares ASCII letters case-insensitively; values with other
        characters, whose lower case may differ, are always candidates and are then tested
        exactly on their lower-cased text.
        """
        mask = text.str.contains_any(self._literals, ascii_case_insensitive=True)
        mask = (mask | (text.str.len_bytes() != text.str.len_chars())).fill_null(False)
        entries = np.flatnonzero(mask.to_numpy()).astype(np.int64)
        if not len(entries):
            return pl.DataFrame(schema=_PAIR_SCHEMA)
        lower = text.gather(entries).str.to_lowercase()
        found = lower.str.extract_many(self._literals, overlapping=True)
        pairs = (
            pl.DataFrame({"u": entries, "lit": found})
            .explode("lit")
            .drop_nulls("lit")
            .unique()
            .join(self._literal_table, on="lit")
            .select("u", "p")
            .join(pl.DataFrame({"u": entries, "lv": lower}), on="u")
        )
        return self._confirm(pairs)

    def _confirm(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Keep the pairs whose lower-cased value `lv` passes the pattern's regex or CIDR."""
        confirmed = []
        for (index,), group in pairs.group_by("p"):
            pattern = self.patterns[int(index)]
            if pattern.cidr:
                continue
            if pattern.regex:
                group = group.filter(pl.col("lv").str.contains(pattern.regex))
            confirmed.append(group.select("u", "p"))
        if len(self._cidr):
            confirmed.append(self._cidr_hits(pairs))
        return pl.concat(confirmed) if confirmed else pl.DataFrame(schema=_PAIR_SCHEMA)

    def _cidr_hits(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Pairs of CIDR IOCs whose value holds a dotted quad inside the range."""
        pairs = pairs.join(self._cidr, on="p")
        if not len(pairs):
            return pl.DataFrame(schema=_PAIR_SCHEMA)
        addresses = ipv4_candidates(pairs.select("u", "lv").unique("u"))
        return (
            pairs.join(addresses, on="u")
            .filter(pl.col("ip").is_between(pl.col("lo"), pl.col("hi")))
            .select("u", "p")
            .unique()
        )

    def _scan_hits(self, indexes: list[int], text: pl.Series) -> pl.DataFrame:
        """Pairs for regex IOCs: one pass of their alternation over every value, then each
        regex on the values that pass."""
        regexes = [self.patterns[i].regex or "" for i in indexes]
        combined = "|".join(f"(?:{regex})" for regex in regexes)
        mask = (text.str.contains(combined) & (text != "")).fill_null(False)
        entries = np.flatnonzero(mask.to_numpy()).astype(np.int64)
        candidates = pl.DataFrame({"u": entries, "v": text.gather(entries)})
        frames = [
            candidates.filter(pl.col("v").str.contains(regex)).select(
                "u", pl.lit(index, dtype=pl.Int64).alias("p")
            )
            for index, regex in zip(indexes, regexes, strict=True)
        ]
        return pl.concat(frames)

    def _entry_hits(self, values: BatchValues, hits: pl.DataFrame) -> pa.Table:
        """Map (entry, pattern) hits to (seq, ioc_id, field), sorted and unique."""
        if not len(hits):
            return HIT_SCHEMA.empty_table()
        entries = hits["u"].to_numpy()
        table = pa.table(
            {
                "seq": values.seq[values.rows(entries)],
                "ioc_id": self._ids[hits["p"].to_numpy()],
                "field": values.field_names(entries),
            },
            schema=HIT_SCHEMA,
        )
        table = table.group_by(HIT_SCHEMA.names).aggregate([])
        return table.sort_by([(name, "ascending") for name in HIT_SCHEMA.names]).cast(HIT_SCHEMA)


def ipv4_candidates(frame: pl.DataFrame) -> pl.DataFrame:
    """(u, ip) for each dotted quad in each value `lv` (see `patterns.IPV4_CANDIDATE`)."""
    octets = pl.col("ip").str.split(".")
    weights = (16777216, 65536, 256, 1)
    number = sum(octets.list.get(i).cast(pl.UInt64) * weight for i, weight in enumerate(weights))
    return (
        frame.with_columns(pl.col("lv").str.extract_all(IPV4_RUN).alias("ip"))
        .explode("ip")
        .with_columns(pl.col("ip").str.strip_chars("."))
        .filter(pl.col("ip").str.contains(IPV4_CANDIDATE))
        .select("u", number.alias("ip"))
    )
