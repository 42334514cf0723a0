"""Callback intake benchmark: N add events/s for D seconds, three processes plus the load.

- siyu's real app (callback endpoint: verify, decrypt, durable inbox row, "success") under
  uvicorn in a subprocess;
- the inbox worker (`process_inbox` in a loop: OneID, follow, attribution, welcome) in another
  subprocess, talking to the fake WeCom over HTTP like it would to qyapi.weixin.qq.com;
- the fake WeCom under uvicorn in a third subprocess (token, get customer, send_welcome_msg;
  it records each welcome's latency from the moment it issued the WelcomeCode);
- this process: the load generator (httpx async). Per event it asks the fake to create the add
  (untimed; in batches every 100 ms), then POSTs the encrypted callback to siyu and times the
  acknowledgement.

Reports ack latency p50/p99 (target p99 < 100 ms), welcome latency p50/p99 from the add to
send_welcome_msg (target < 5 s) and the worker's drain time. Baseline side by side: the same
callbacks' decrypt alone, in this process (the floor of any handler that verifies at all).

    .venv/bin/python benchmarks/wecom/bench_callbacks.py                     # 200/s for 10 s
    .venv/bin/python benchmarks/wecom/bench_callbacks.py --rate 500 --seconds 60
    .venv/bin/python benchmarks/wecom/bench_callbacks.py --database-url postgresql+psycopg://…

Measured 2026-11-23 on the shared 2-core box (all four processes on it).

With the welcome lane (`siyu wecom inbox-worker`: welcomes ahead of the ingest, the ingest on
a thread pausing while the lane is behind), PostgreSQL 15, WeCom's own rate limit
(10,000 calls/min per API), quiet box:
- 100/s x 60 s: ack p50 7.2 ms, p99 20.7 ms; welcomes 6,000/6,000, p50 1.44 s, p99 4.02 s —
  both targets met at this rate. The ingest (OneID, follow, attribution, tags: ~26 statements
  per add, ~22 adds/s per worker on PostgreSQL) runs behind and drains after the burst.
  After the lane's race fix (e15c1da: the watermark moves only once a pass's welcome rows are
  written), three runs at 20:43-20:53 UTC, quiet box (load ~1): ack p99 27.5 / 20.1 / 18.9 ms;
  welcomes 6,000/6,000 each time, p50 2.58 / 1.86 / 0.28 s, p99 7.15 / 4.66 / 2.26 s — the
  welcome target held in two of three (the first ran straight after a 10M-row benchmark had
  dropped its databases); ingest drained 0-1,602 adds short at 120 s after the burst.
- baseline side by side, the same run with `--no-lane` (the pass loop: a batch's welcomes sent
  before its ingest): ack p99 19.9 ms; 494/6,000 welcomes in the window, p99 10.0 s — every
  batch waits for the previous one's ingest.
- 130/s x 60 s: ack p99 40.9 ms; welcomes 7,800/7,800 but p50 7.6 s, p99 12.7 s; 160/s:
  p50 15.8 s. The box is the ceiling near ~110 adds/s: per add the load generator, the intake,
  the fake WeCom (3 requests) and the worker (2 calls at ~3 ms of httpx CPU each) share two
  cores.
- 500/s x 20 s, limit lifted: ack p50 60 ms, p99 230 ms; 1,663/10,000 welcomes in time.
- SQLite, 100/s x 60 s with the lane: welcomes 6,000/6,000, p50 4.1 s, p99 9.7 s; ack p99
  1.33 s — the worker's transactions hold SQLite's single write lock while the intake's group
  commits wait: at this rate, run on PostgreSQL.
Earlier (pass loop only, SQLite, before the lane): 500/s x 30 s with the platform limit: ack
p99 405 ms, 1,269/15,000 welcomes in time; intake alone (`--no-worker`) 500/s x 20 s: ack p50
2.4 ms, p99 13.5 ms.

So the issue's targets (ack p99 < 100 ms, welcome p99 < 5 s) hold at 100 adds/s on this box,
not at 500/s. Note the platform: at 500 adds/s a minute holds 30,000 welcomes and 30,000
customer fetches, three times WeCom's 10,000 calls/min per API — no client can greet them all
within 20 s; the client's rate limiter queues the calls (with the lane, the ingest reuses the
customers the lane fetched, so it adds no calls of its own for those adds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

FULL_APP = os.environ.get("BENCH_FULL_APP") == "1"  # --full-app: console + API middleware too
CORP, TOKEN = "wwBenchTea", "BenchToken"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SECRET = "bench-secret"


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SIYU_ENVIRONMENT="test",
        SIYU_DATA_DIR=str(args.data_dir),
        SIYU_WECOM_CORP_ID=CORP,
        SIYU_WECOM_TOKEN=TOKEN,
        SIYU_WECOM_AES_KEY=AES_KEY,
        SIYU_WECOM_SECRET=SECRET,
        SIYU_WECOM_API_BASE=f"http://127.0.0.1:{args.fake_port}",
        SIYU_FAKE_WECOM_CALLBACK=f"http://127.0.0.1:{args.siyu_port}/wecom/callback",
    )
    if args.database_url:
        env["SIYU_DATABASE_URL"] = args.database_url
    if getattr(args, "full_app", False):
        env["BENCH_FULL_APP"] = "1"
    env["BENCH_PER_MINUTE"] = str(args.per_minute)
    env["BENCH_LANE"] = "0" if getattr(args, "no_lane", False) else "1"
    return env


# ------------------------------------------------------------------ subprocess roles


def serve_siyu(port: int) -> None:
    import uvicorn

    from siyu.api.app import create_app
    from siyu.api.wecom import create_callback_app
    from siyu.bootstrap import bootstrap
    from siyu.config import Settings

    siyu = bootstrap(Settings(), migrate=False)
    app = create_app(siyu) if FULL_APP else create_callback_app(siyu)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_fake(port: int) -> None:
    import uvicorn

    from siyu.channels.wecom.fake_server import app_from_env

    uvicorn.run(app_from_env(), host="127.0.0.1", port=port, log_level="warning")


async def run_worker() -> None:
    from siyu.bootstrap import bootstrap
    from siyu.channels.wecom.client import RateLimiter, WeComClient
    from siyu.channels.wecom.processing import process_inbox
    from siyu.config import Settings

    settings = Settings()
    siyu = bootstrap(settings, migrate=False)
    assert settings.wecom_corp_id is not None
    per_minute = int(os.environ["BENCH_PER_MINUTE"])
    client = WeComClient(
        corp_id=CORP,
        secret=SECRET,
        base_url=settings.wecom_api_base,
        limiter=RateLimiter(per_minute=per_minute, per_hour=max(150_000, per_minute * 60)),
    )
    (settings.data_dir / "worker.ready").touch()
    if os.environ.get("BENCH_LANE") == "1":  # what `siyu wecom inbox-worker` runs
        from siyu.channels.wecom.worker import run_inbox_lanes
        from siyu.clock import SystemClock

        await run_inbox_lanes(
            session_factory=siyu.session_factory,
            client=client,
            clock=SystemClock(),
            tz=settings.tz,
            stop=asyncio.Event(),  # until terminated
        )
    while True:  # --no-lane: the worker pass loop (`siyu wecom work` / `siyu worker`)
        result = await process_inbox(
            session_factory=siyu.session_factory,
            client=client,
            now=datetime.now(UTC),
            tz=settings.tz,
            limit=200,
        )
        if result.processed + result.failed == 0:
            await asyncio.sleep(0.02)


# ------------------------------------------------------------------ orchestration


def _start(role: str, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--role", role]
    command += ["--siyu-port", str(args.siyu_port), "--fake-port", str(args.fake_port)]
    return subprocess.Popen(command, env=_env(args))


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def _create_code(args: argparse.Namespace, session_factory: object) -> None:
    from siyu.channels.wecom.client import WeComClient
    from siyu.growth import service as growth
    from siyu.growth.models import CodeScope

    async with WeComClient(
        corp_id=CORP, secret=SECRET, base_url=f"http://127.0.0.1:{args.fake_port}"
    ) as client:
        await growth.create_channel_code(
            session_factory=session_factory,  # type: ignore[arg-type]
            gateway=client.add_contact_way,
            name="bench",
            scope=CodeScope.GUIDE,
            userids=["xiaoli"],
            state="bench",
            welcome={"text": "Hi {name}"},
            now=datetime.now(UTC),
        )


class _Connection:
    """One keep-alive HTTP/1.1 connection to siyu. The load generator must be cheaper than the
    server it measures: httpx's async pool spent ~95% of a core here at 300 callbacks/s (the
    server ~6%), so the callbacks go over plain asyncio streams instead."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, target: str, body: bytes) -> bytes:
        head = (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _load(
    args: argparse.Namespace, *, count: int, rate: int
) -> tuple[list[float], list[float], float]:
    """Every 100 ms: one batch of adds from the fake (untimed), then one timed POST each, over
    64 keep-alive connections. A callback's ack latency counts from its scheduled send time,
    so time spent queued behind a slow server is measured too (no coordinated omission)."""
    from urllib.parse import urlencode

    from siyu.channels.wecom.crypto import CallbackCrypto

    crypto = CallbackCrypto(token=TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP)
    acks: list[float] = []
    baseline: list[float] = []
    run = time.time_ns()
    queue: asyncio.Queue[tuple[float, dict[str, Any]] | None] = asyncio.Queue()

    async def sender() -> None:
        connection = await _Connection.open(args.siyu_port)
        try:
            while (item := await queue.get()) is not None:
                due, prepared = item
                if (early := due - time.perf_counter()) > 0:
                    await asyncio.sleep(early)
                target = "/wecom/callback?" + urlencode(prepared["params"])
                answer = await connection.post(target, prepared["body"].encode())
                acks.append(time.perf_counter() - due)
                assert answer == b"success", answer
                t1 = time.perf_counter()
                crypto.decrypt(
                    encrypt=prepared["body"].split("<![CDATA[")[1].split("]]>")[0],
                    **prepared["params"],
                )
                baseline.append(time.perf_counter() - t1)
        finally:
            connection.close()

    senders = [asyncio.create_task(sender()) for _ in range(64)]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{args.fake_port}", timeout=httpx.Timeout(60.0)
    ) as fake:
        started = time.perf_counter()
        per_tick, sent, tick = max(1, rate // 10), 0, 0
        while sent < count:
            size = min(per_tick, count - sent)
            adds = [
                {
                    "userid": "xiaoli",
                    "state": "bench",
                    "name": f"Customer {sent + k}",
                    "external_userid": f"wm{run}x{sent + k}",  # unique across runs on one DB
                }
                for k in range(size)
            ]
            batch = (await fake.post("/fake/prepare_adds", json={"adds": adds})).json()
            due = started + tick * 0.1
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for k, prepared in enumerate(batch["prepared"]):
                queue.put_nowait((due + 0.1 * k / size, prepared))  # spread over the tick
            sent, tick = sent + size, tick + 1
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.gather(*senders)
        return acks, baseline, time.perf_counter() - started


async def orchestrate(args: argparse.Namespace) -> None:
    from siyu.bootstrap import bootstrap
    from siyu.channels.wecom.models import WeComInbox
    from siyu.config import Settings

    os.environ.update(_env(args))
    siyu = bootstrap(Settings())  # migrates once, before the servers start
    processes = [_start("fake", args), _start("siyu", args)]
    try:
        await _wait_up(f"http://127.0.0.1:{args.fake_port}/fake/stats")
        await _wait_up(f"http://127.0.0.1:{args.siyu_port}/wecom/callback")
        await _create_code(args, siyu.session_factory)
        if not args.no_worker:
            processes.append(_start("worker", args))
            while not (args.data_dir / "worker.ready").exists():
                await asyncio.sleep(0.1)
        await _load(args, count=args.warmup, rate=10)  # cold caches, first connections
        await asyncio.sleep(2)
        async with httpx.AsyncClient() as http:
            warm = len(
                (await http.get(f"http://127.0.0.1:{args.fake_port}/fake/stats")).json()[
                    "welcome_latencies"
                ]
            )
        acks, baseline, elapsed = await _load(args, count=args.rate * args.seconds, rate=args.rate)
        drain_started = time.perf_counter()
        pending = sa.select(sa.func.count()).where(WeComInbox.status == "pending")
        while True:
            with siyu.session_factory() as session:
                left = session.scalar(pending.select_from(WeComInbox)) or 0
            waited = time.perf_counter() - drain_started
            if args.no_worker or left == 0 or waited > args.drain_timeout:
                break
            await asyncio.sleep(0.2)
        drained = time.perf_counter() - drain_started
        async with httpx.AsyncClient() as http:
            stats = (await http.get(f"http://127.0.0.1:{args.fake_port}/fake/stats")).json()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        siyu.close()
    welcome = [float(x) for x in stats["welcome_latencies"][warm:]]
    total = len(acks)
    print(f"store: {Settings().resolved_database_url.split(':')[0]}; 3 processes + load generator")
    worker = "none" if args.no_worker else "pass loop" if args.no_lane else "welcome lane + ingest"
    print(f"inbox worker: {worker}")
    print(
        f"worker rate limit: {args.per_minute:,} calls/min per API"
        + (" (WeCom's own limit)" if args.per_minute == 10_000 else " (lifted: fake WeCom only)")
    )
    print(f"callbacks: {total} in {elapsed:.1f} s = {total / elapsed:.0f}/s (asked {args.rate}/s)")
    print(
        f"ack latency     p50 {pct(acks, 0.5) * 1000:6.1f} ms  p99 {pct(acks, 0.99) * 1000:6.1f} ms"
        "  (target p99 < 100 ms)"
    )
    print(
        f"baseline decrypt-only p50 {pct(baseline, 0.5) * 1000:.2f} ms; ack/baseline p50 "
        f"{pct(acks, 0.5) / max(pct(baseline, 0.5), 1e-9):.0f}x"
    )
    print(
        f"welcomes sent {len(welcome)}/{total}  p50 {pct(welcome, 0.5):.2f} s  "
        f"p99 {pct(welcome, 0.99):.2f} s  (target p99 < 5 s); inbox drained {drained:.1f} s "
        f"after the last callback ({left} left)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=200, help="add events per second")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--siyu-port", type=int, default=8711)
    parser.add_argument("--fake-port", type=int, default=8712)
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument(
        "--full-app", action="store_true", help="serve the whole app, not the intake app"
    )
    parser.add_argument("--no-worker", action="store_true", help="intake only (ack latency)")
    parser.add_argument(
        "--no-lane", action="store_true", help="worker without the welcome lane (pass loop)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="events before measuring")
    parser.add_argument(
        "--per-minute",
        type=int,
        default=10_000,
        help="the worker client's calls/min per API (WeCom's limit is 10,000; the fake has none)",
    )
    parser.add_argument("--role", choices=("siyu", "fake", "worker"), default=None)
    args = parser.parse_args()
    if args.role == "siyu":
        serve_siyu(args.siyu_port)
    elif args.role == "fake":
        serve_fake(args.fake_port)
    elif args.role == "worker":
        asyncio.run(run_worker())
    else:
        Path("/tmp/wecom").mkdir(parents=True, exist_ok=True)
        args.data_dir = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp/wecom"))
        try:
            asyncio.run(orchestrate(args))
        finally:
            shutil.rmtree(args.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
