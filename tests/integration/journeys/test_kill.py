"""Kill test: worker processes SIGKILLed at random instants lose no step and double none.

N enrollments × 3 message steps (with waits between them, so each step is its own claim) run
by two concurrent `siyu worker` processes on PostgreSQL; a killer SIGKILLs both at a random
instant, restarts them, and does so SIYU_KILL_TEST_ROUNDS times (default 2); then workers run
without crashes until the work is done. Afterwards the outbox holds exactly one
message per due step. N defaults to 400 so `make test` stays fast (~15 s, dominated by worker
start-up); the issue's full scale is
`SIYU_KILL_TEST_ENROLLMENTS=100000 SIYU_KILL_TEST_ROUNDS=8 SIYU_KILL_TEST_MAX_SLEEP=6`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from siyu.bootstrap import bootstrap
from siyu.channels import journey_runtime
from siyu.clock import FixedClock
from siyu.config import Settings
from siyu.db import transaction
from siyu.journeys import service as journey_service

ENROLLMENTS = int(os.environ.get("SIYU_KILL_TEST_ENROLLMENTS", "400"))
KILL_ROUNDS = int(os.environ.get("SIYU_KILL_TEST_ROUNDS", "2"))
MAX_SLEEP = float(os.environ.get("SIYU_KILL_TEST_MAX_SLEEP", "3.5"))
FINISHING_PASSES = 10
START = datetime(2026, 6, 18, 2, 0, tzinfo=UTC)
THREE_STEPS = """
name: kill-test
trigger: {type: schedule, every: once, start: "2026-06-18T10:00:00+08:00"}
steps:
  - {id: first, type: action, action: send_message, params: {body: "1 for {{ member.name }}"}}
  - {id: gap1, type: wait, duration: {hours: 1}}
  - {id: second, type: action, action: send_message, params: {body: "2 for {{ member.name }}"}}
  - {id: gap2, type: wait, duration: {hours: 1}}
  - {id: third, type: action, action: send_message, params: {body: "3 for {{ member.name }}"}}
"""


def _seed(url: str, tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path / "d", database_url=url)
    siyu = bootstrap(settings, clock=FixedClock(START), migrate=False)
    with siyu.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO members (name, gender, store_code, registered_at, created_at, "
                "updated_at) SELECT 'Member ' || g, 'F', 'SH001', :at, :at, :at "
                "FROM generate_series(1, :n) AS g"
            ),
            {"at": START, "n": ENROLLMENTS},
        )
    with transaction(siyu.session_factory) as db:
        journey_service.apply_definition(
            db_session=db, now=START, text=THREE_STEPS, actions=journey_runtime(siyu).actions
        )
    siyu.close()


def _start_worker(url: str, tmp_path: Path, *, once: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_DATA_DIR": str(tmp_path / "d")}
    command = [
        sys.executable,
        "-c",
        "from siyu.cli.main import main; main()",
        "worker",
        "--now",
        "2026-06-19T10:00:00+08:00",
        "--interval",
        "0.2",
        "--batch",
        "100",
        *(["--once"] if once else []),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _remaining(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        timers = connection.scalar(sa.text("SELECT count(*) FROM journey_timers")) or 0
        enrollments = connection.scalar(sa.text("SELECT count(*) FROM journey_enrollments")) or 0
        pending = (
            connection.scalar(
                sa.text("SELECT count(*) FROM delivery_outbox WHERE status = 'pending'")
            )
            or 0
        )
    return int(timers) + int(pending) + (ENROLLMENTS - int(enrollments))


def test_killed_workers_leave_exactly_one_message_per_due_step(
    postgres_url: str, tmp_path: Path
) -> None:
    # given N members and a 3-message journey, worked by two worker processes
    _seed(postgres_url, tmp_path)
    engine = sa.create_engine(postgres_url)
    rng = random.Random(20260618)
    kills = 0

    # when workers are SIGKILLed at random instants (startup takes ~2s, so most kills land
    # mid-batch), then restarted without crashes until nothing is left to do
    for _ in range(KILL_ROUNDS):
        if _remaining(engine) == 0:
            break
        workers = [_start_worker(postgres_url, tmp_path) for _ in range(2)]
        time.sleep(rng.uniform(1.5, MAX_SLEEP))
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
    for _ in range(FINISHING_PASSES):
        if _remaining(engine) == 0:
            break
        workers = [_start_worker(postgres_url, tmp_path, once=True) for _ in range(2)]
        for worker in workers:
            worker.wait(timeout=600)

    # then every due step produced exactly one message, and nothing is left undone
    with engine.connect() as connection:
        per_enrollment = connection.execute(
            sa.text(
                "SELECT count(*) AS messages, count(DISTINCT body) AS distinct_bodies "
                "FROM delivery_outbox "
                "GROUP BY split_part(split_part(idempotency_key, :e, 2), :c, 1)"
            ),
            {"e": ":e", "c": ":"},
        ).all()
        total = connection.scalar(sa.text("SELECT count(*) FROM delivery_outbox"))
        sent = connection.scalar(
            sa.text("SELECT count(*) FROM delivery_outbox WHERE status = 'sent'")
        )
        completed = connection.scalar(
            sa.text("SELECT count(*) FROM journey_enrollments WHERE state = 'completed'")
        )
        step_runs = connection.scalar(sa.text("SELECT count(*) FROM journey_step_runs"))
    engine.dispose()
    assert kills > 0
    assert _remaining(sa.create_engine(postgres_url)) == 0
    assert total == 3 * ENROLLMENTS
    assert sent == 3 * ENROLLMENTS
    assert completed == ENROLLMENTS
    assert step_runs == 5 * ENROLLMENTS
    assert len(per_enrollment) == ENROLLMENTS
    assert {(row.messages, row.distinct_bodies) for row in per_enrollment} == {(3, 3)}
