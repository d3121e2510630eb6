"""Benchmark: the IOC batch matcher with 100+ IOCs of every type on Sysmon-like events.

Prints events/s (best of 3) for one compiled matcher on one batch; the issue's goal is
>= 100k events/s per process. Usage: .venv/bin/python bench/ioc.py [--events 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from dataclasses import replace

import pyarrow as pa

from casescope.hunt.ioc import Ioc
from casescope.hunt.matcher import compile_iocs
from casescope.hunt.normalise import normalise
from casescope.parse.schema import EVENT_SCHEMA


def ioc(value: str, ioc_type: str | None, ioc_id: int) -> Ioc:
    return replace(normalise(value, ioc_type), id=ioc_id)


def _sysmon_like(count: int) -> pa.RecordBatch:
    rng = random.Random(7)
    images = [f"C:\\Windows\\System32\\{n}.exe" for n in ("svchost", "cmd", "rundll32", "lsass")]
    images += [f"C:\\Users\\u{i}\\AppData\\Local\\Temp\\tool{i}.exe" for i in range(300)]

    def guid() -> str:
        return f"{{{rng.getrandbits(128):032X}}}"

    def fields(i: int) -> list[tuple[str, str]]:
        image = rng.choice(images)
        digest = hashlib.sha256(str(i).encode()).hexdigest().upper()
        return [
            ("UtcTime", f"2024-03-01 10:{i % 60:02d}:00.123"),
            ("ProcessGuid", guid()),
            ("ProcessId", str(rng.randrange(65536))),
            ("Image", image),
            ("CommandLine", f'"{image}" -k netsvcs -p /id {rng.randrange(10**6)}'),
            ("User", f"CORP\\user{rng.randrange(200)}"),
            ("LogonGuid", guid()),
            ("Hashes", f"MD5={digest[:32]},SHA256={digest}"),
            ("ParentImage", rng.choice(images)),
            ("DestinationIp", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"),
            ("DestinationHostname", f"host{rng.randrange(5000)}.example.com"),
            ("QueryName", f"www{rng.randrange(3000)}.microsoft.com"),
        ]

    columns = {
        "seq": range(count),
        "channel": ["Microsoft-Windows-Sysmon/Operational"] * count,
        "provider": ["Microsoft-Windows-Sysmon"] * count,
        "computer": [f"WS-{rng.randrange(300):04d}.corp.local" for _ in range(count)],
        "user_name": [f"user{rng.randrange(200)}" for _ in range(count)],
        "user_sid": ["S-1-5-18"] * count,
        "fields": [fields(i) for i in range(count)],
        "raw": ["{}"] * count,
    }
    arrays = [pa.array(columns.get(f.name, [None] * count), type=f.type) for f in EVENT_SCHEMA]
    return pa.RecordBatch.from_arrays(arrays, schema=EVENT_SCHEMA)


def _hundred_iocs() -> list[Ioc]:
    values: list[tuple[str, str | None]] = []
    values += [(f"185.{i}.{i}.{i + 1}", None) for i in range(15)]
    values += [(f"2001:db8::{i + 1:x}", None) for i in range(5)]
    values += [(f"45.{i}.0.0/16", None) for i in range(5)]
    values += [(f"evil-domain{i}.com", None) for i in range(15)]
    values += [(hashlib.md5(str(i).encode()).hexdigest(), None) for i in range(10)]
    values += [(hashlib.sha1(str(i).encode()).hexdigest(), None) for i in range(5)]
    values += [(hashlib.sha256(str(-i).encode()).hexdigest(), None) for i in range(10)]
    values += [(f"mal-ware{i}.exe", None) for i in range(10)]
    values += [(f"C:\\ProgramData\\bad{i}\\", "filepath") for i in range(5)]
    values += [(f"HKLM\\Software\\Evil{i}\\Run", None) for i in range(5)]
    values += [(f"baduser{i}", "username") for i in range(5)]
    values += [(f"S-1-5-21-1111-2222-3333-{1000 + i}", None) for i in range(3)]
    values += [(f"attacker{i}@evil.com", None) for i in range(2)]
    values += [(f"-enc JAB{i}", "command") for i in range(3)]
    values += [("mimikatz", None), (r"invoke-\w+shell", "regex"), ("user7", "username")]
    values += [("10.1.2.3", None), ("10.99.0.0/16", None), ("www12.microsoft.com", None)]
    return [ioc(value, ioc_type, n) for n, (value, ioc_type) in enumerate(values)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    batch = _sysmon_like(args.events)
    iocs = _hundred_iocs()
    matcher = compile_iocs(iocs)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        hits = matcher.match(batch)
        best = min(best, time.perf_counter() - started)
    print(
        f"{len(iocs)} IOCs, {args.events:,} events: {args.events / best:,.0f} events/s "
        f"(best of 3), {hits.num_rows:,} hits"
    )


if __name__ == "__main__":
    main()
