"""The large search case of bench/search.py and bench/flood.py, and a `casescope serve` to
query it: NDJSON copies of the attack samples' EVTX events with shifted timestamps, ingested
once into a home that is reused when its marker matches; the server on a free port with an
admin and an API token."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import evtx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"] + [str(ROOT)]
from bench.common import ATTACK_SAMPLES, RssSampler

CASE = "bench-search"
USER = "bench"
PASSWORD = "bench password 1234"
MARKER = "bench-search.json"
TS_HOLE = "@@casescope-bench-ts@@"


# ---------------------------------------------------------------- building the case


def sample_templates() -> list[tuple[str, str, datetime]]:
    """Each sample event as JSON split around its timestamp, with that timestamp."""
    out = []
    for path in sorted(ATTACK_SAMPLES.rglob("*.evtx")):
        try:
            records = list(evtx.PyEvtxParser(str(path), number_of_threads=1).records_json())
        except (OSError, RuntimeError):
            continue
        for record in records:
            event = json.loads(record["data"])
            created = event.get("Event", {}).get("System", {}).get("TimeCreated", {})
            attrs = created.get("#attributes", {}) if isinstance(created, dict) else {}
            stamp = attrs.get("SystemTime")
            if not stamp:
                continue
            attrs["SystemTime"] = TS_HOLE
            head, tail = json.dumps(event, separators=(",", ":")).split(TS_HOLE)
            out.append((head, tail, datetime.fromisoformat(stamp.replace("Z", "+00:00"))))
    return out


def write_copies(target: Path, events: int, files: int) -> tuple[int, list[Path]]:
    """NDJSON files holding `events` events: copies of the samples, copy k shifted k hours."""
    templates = sample_templates()
    target.mkdir(parents=True, exist_ok=True)
    paths = [target / f"copies-{n:02d}.ndjson" for n in range(files)]
    outs = [p.open("w", encoding="utf-8") for p in paths]
    written = 0
    copy = 0
    try:
        while written < events:
            out = outs[copy % files]
            shift = timedelta(hours=copy)
            lines = []
            for head, tail, ts in templates[: events - written]:
                stamp = (ts + shift).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                lines.append(f"{head}{stamp}{tail}\n")
            out.write("".join(lines))
            written += len(lines)
            copy += 1
    finally:
        for out in outs:
            out.close()
    return written, paths


def casescope(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "CASESCOPE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "casescope", *args],
        env=env,
        check=check,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def build_case(home: Path, events: int, files: int) -> dict:
    """Generate and ingest the case; remembers what was built in `home/MARKER`."""
    marker = home / MARKER
    if marker.exists():
        built = json.loads(marker.read_text())
        if built["events"] >= events:
            print(f"reusing {home}: {built['events']:,} events (ingested in {built['ingest_s']} s)")
            return built
    with tempfile.TemporaryDirectory(dir=home) as tmp:
        started = time.perf_counter()
        written, paths = write_copies(Path(tmp) / "copies", events, files)
        generate_s = time.perf_counter() - started
        size = sum(p.stat().st_size for p in paths)
        print(
            f"generated {written:,} events in {files} NDJSON files ({size / 2**30:.1f} GiB) "
            f"in {generate_s:.0f} s; ingesting ...",
            flush=True,
        )
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "casescope", "ingest", "--case", CASE, str(Path(tmp))],
            env={**os.environ, "CASESCOPE_HOME": str(home)},
            stdout=subprocess.DEVNULL,
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        if proc.wait() != 0:
            raise SystemExit(f"casescope ingest exited with {proc.returncode}")
        sampler.stop()
        ingest_s = time.perf_counter() - started
    built = {"events": written, "files": files, "ingest_s": round(ingest_s, 1)}
    print(f"ingested in {ingest_s:.0f} s ({written / ingest_s:,.0f} events/s)")
    print(sampler.report())
    marker.write_text(json.dumps(built))
    return built


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """A keep-alive HTTP client with the bearer token."""

    def __init__(self, port: int, token: str = "") -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def get(self, path: str, **params: object) -> dict | list:
        status, data = self.call("GET", f"{path}?{urlencode(params)}" if params else path)
        if status != 200:
            raise SystemExit(f"GET {path} {params}: {status} {data[:300]!r}")
        return json.loads(data)


def start_server(home: Path, port: int, env: dict[str, str] | None = None) -> psutil.Popen:
    """`casescope serve` on `home` with `env` added, once it answers /health."""
    environ = {
        **os.environ,
        "CASESCOPE_HOME": str(home),
        "CASESCOPE_SECRET_KEY": secrets.token_urlsafe(48),
        **(env or {}),
    }
    proc = psutil.Popen(
        [sys.executable, "-m", "casescope", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            status, _ = Api(port).call("GET", "/health")
            if status in (200, 503):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("casescope serve did not come up in 300 s")


def api_token(port: int) -> str:
    """Log in (session cookie), then create an API token with it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"username": USER, "password": PASSWORD})
    conn.request("POST", "/api/login", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    login = json.loads(response.read())
    cookie = response.getheader("set-cookie", "").split(";", 1)[0]
    headers = {
        "Content-Type": "application/json",
        "Cookie": cookie,
        "X-CSRF-Token": login["csrf_token"],
    }
    conn.request("POST", "/api/tokens", body=json.dumps({"name": "bench"}), headers=headers)
    response = conn.getresponse()
    created = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"token: {response.status} {created}")
    return created["token"]
