"""Callback intake benchmark (KNOWN LIMITATION: worker, endpoint and load generator share one
event loop and the worker does synchronous DB work, so ack latency here is dominated by the
blocked loop; run siyu under uvicorn and the worker as its own process for real figures).

Callback intake benchmark: N adds/s for D seconds through siyu's real callback endpoint
(in-process ASGI, signed + encrypted by the fake WeCom), with the inbox worker running.

Reports ack latency p50/p99 (target p99 < 100 ms) and welcome latency p99 from the add to
send_welcome_msg (target < 5 s). Baseline side by side: the same callbacks through a bare
decrypt-only handler (no store), to show what durability costs.

    .venv/bin/python benchmarks/wecom/bench_callbacks.py                 # 100/s for 5 s
    .venv/bin/python benchmarks/wecom/bench_callbacks.py --rate 500 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from siyu.bootstrap import bootstrap
from siyu.channels.wecom.processing import process_inbox
from siyu.channels.wecom.simulate import start
from siyu.config import Settings
from siyu.growth import service as growth
from siyu.growth.models import CodeScope


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run(rate: int, seconds: int, data_dir: Path) -> None:
    siyu = bootstrap(Settings(environment="test", data_dir=data_dir))
    sim = start(siyu)
    await growth.create_channel_code(
        session_factory=siyu.session_factory,
        gateway=sim.client.add_contact_way,
        name="bench",
        scope=CodeScope.GUIDE,
        userids=["xiaoli"],
        state="bench",
        welcome={"text": "Hi {name}"},
        now=siyu.clock.now(),
    )
    acks: list[float] = []
    crypto_only: list[float] = []
    done = asyncio.Event()

    async def worker() -> None:
        while not done.is_set():
            await process_inbox(
                session_factory=siyu.session_factory,
                client=sim.client,
                now=siyu.clock.now(),
                tz=siyu.settings.tz,
                limit=500,
            )
            await asyncio.sleep(0.05)
        await process_inbox(
            session_factory=siyu.session_factory,
            client=sim.client,
            now=siyu.clock.now(),
            tz=siyu.settings.tz,
            limit=100_000,
        )

    async def one(n: int) -> None:
        fields = sim.fake.simulate_add(userid="xiaoli", state="bench", name=f"Customer {n}")
        params, body = sim.fake.envelope(fields)
        t0 = time.perf_counter()
        response = await sim.siyu_http.post("/wecom/callback", params=params, content=body)
        acks.append(time.perf_counter() - t0)
        assert response.text == "success", response.text
        t1 = time.perf_counter()
        sim.fake.crypto.decrypt(
            msg_signature=params["msg_signature"],
            timestamp=params["timestamp"],
            nonce=params["nonce"],
            encrypt=body.split("<![CDATA[")[1].split("]]>")[0],
        )
        crypto_only.append(time.perf_counter() - t1)

    work = asyncio.create_task(worker())
    started = time.perf_counter()
    pending = []
    for n in range(rate * seconds):
        target = started + n / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(n)))
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - started
    done.set()
    await work
    await sim.aclose()
    welcome = [w["latency"] for w in sim.fake.welcomes_sent]
    print(
        f"callbacks: {len(acks)} in {elapsed:.1f}s = {len(acks) / elapsed:.0f}/s (asked {rate}/s)"
    )
    print(
        f"ack latency   p50 {pct(acks, 0.5) * 1000:.1f} ms  "
        f"p99 {pct(acks, 0.99) * 1000:.1f} ms  (target p99 < 100 ms)"
    )
    print(
        f"baseline decrypt-only p99 {pct(crypto_only, 0.99) * 1000:.2f} ms  ratio ack/baseline p50 "
        f"{statistics.median(acks) / max(statistics.median(crypto_only), 1e-9):.0f}x"
    )
    print(
        f"welcomes sent {len(welcome)}/{len(acks)}  latency p50 {pct(welcome, 0.5):.2f} s  "
        f"p99 {pct(welcome, 0.99):.2f} s  (target p99 < 5 s)"
    )
    siyu.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wecom-bench-") as scratch:
        asyncio.run(run(args.rate, args.seconds, Path(scratch)))


if __name__ == "__main__":
    main()
