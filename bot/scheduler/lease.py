"""One active scheduler at a time: a lease row in the database, renewed while its holder lives.

``Lease.acquire(now)`` takes the lease when nobody holds it or the holder's lease expired
(it died or lost the database), and renews it when this process already holds it. The
check-and-take is a single ``UPDATE ... WHERE holder = me OR expires_at <= now`` (or an
``INSERT`` of the first row), which the database serialises, so two processes never both
believe they hold it for the same instant. Times are naive UTC, from the caller's clock.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.store.models import SchedulerLease
from bot.store.session import utc

log = logging.getLogger("kpibot.scheduler")

DEFAULT_NAME = "scheduler"


def new_holder_id() -> str:
    """A holder id unique to this process start: host, pid and a random suffix."""
    host = socket.gethostname()[:60]
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseState:
    holder: str
    expires_at: datetime
    generation: int


class Lease:
    def __init__(
        self,
        factory: sessionmaker[Session],
        holder: str | None = None,
        *,
        ttl: timedelta = timedelta(seconds=90),
        name: str = DEFAULT_NAME,
    ) -> None:
        self.factory = factory
        self.holder = holder or new_holder_id()
        self.ttl = ttl
        self.name = name
        self.held = False
        self.generation: int | None = None

    def acquire(self, now: datetime) -> bool:
        """Take or renew the lease at ``now``; True while this process holds it."""
        now = utc(now)
        expires = now + self.ttl
        was_held = self.held
        mine = SchedulerLease.holder == self.holder
        with self.factory() as s:
            res = s.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == self.name, or_(mine, SchedulerLease.expires_at <= now)
                )
                .values(
                    generation=case(
                        (mine, SchedulerLease.generation), else_=SchedulerLease.generation + 1
                    ),
                    acquired_at=case((mine, SchedulerLease.acquired_at), else_=now),
                    holder=self.holder,
                    renewed_at=now,
                    expires_at=expires,
                )
                .execution_options(synchronize_session=False)
            )
            held = res.rowcount == 1  # type: ignore[attr-defined]
            if held:
                s.commit()
            else:
                s.rollback()
                if s.get(SchedulerLease, self.name) is None:
                    s.add(
                        SchedulerLease(
                            name=self.name,
                            holder=self.holder,
                            acquired_at=now,
                            renewed_at=now,
                            expires_at=expires,
                            generation=1,
                        )
                    )
                    try:
                        s.commit()
                        held = True
                    except IntegrityError:  # another process inserted it first
                        s.rollback()
            if held:
                self.generation = s.scalar(
                    select(SchedulerLease.generation).where(SchedulerLease.name == self.name)
                )
        self.held = held
        if held and not was_held:
            log.info("scheduler lease taken by %s (generation %s)", self.holder, self.generation)
        elif was_held and not held:
            log.warning("scheduler lease lost by %s; another scheduler is active", self.holder)
        return held

    def release(self, now: datetime) -> None:
        """Give the lease up (on a clean stop) so another scheduler takes over at once."""
        if not self.held:
            return
        with self.factory() as s:
            s.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name, SchedulerLease.holder == self.holder)
                .values(expires_at=utc(now))
                .execution_options(synchronize_session=False)
            )
            s.commit()
        self.held = False
        log.info("scheduler lease released by %s", self.holder)

    def state(self) -> LeaseState | None:
        with self.factory() as s:
            row = s.get(SchedulerLease, self.name)
            if row is None:
                return None
            return LeaseState(row.holder, row.expires_at, row.generation)
