"""Builders shared by the handoff queue tests: the real rules file, agents, routes."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import redis.asyncio as aioredis

from bot.settings import HandoffSettings
from handoff.agents import Agent, Role
from handoff.hours import BusinessHours
from handoff.policy import Reason, Route
from handoff.queues import HandoffQueues
from handoff.rules import HandoffRules, load_rules

CONFIG = Path(__file__).resolve().parents[2] / "config"
T0 = 1_800_000_000_000  # a fixed "now" in ms; tests move time by hand
MIN = 60_000


@functools.cache
def rules() -> HandoffRules:
    # Loaded once: HandoffRules is frozen (tests that need other departments use dataclasses.replace).
    return load_rules(CONFIG / "handoff.yaml", default_department="general")


def queues(redis: aioredis.Redis, **settings: object) -> HandoffQueues:
    return HandoffQueues(redis, rules(), HandoffSettings(**settings))  # type: ignore[arg-type]


def rules_with_hours(hours: BusinessHours) -> HandoffRules:
    """The rules file with every department open at `hours` (BusinessHours(): always)."""
    base = rules()
    departments = {n: dataclasses.replace(d, hours=hours) for n, d in base.departments.items()}
    return dataclasses.replace(base, departments=departments)


def open_queues(redis: aioredis.Redis, hours: BusinessHours | None = None, **settings: object) -> HandoffQueues:
    """Queues whose departments are open at any hour (or at `hours`): SLA clocks that a test moves by hand
    must not stop because the fixed "now" falls outside the sample's business hours."""
    chosen = rules_with_hours(hours if hours is not None else BusinessHours())
    return HandoffQueues(redis, chosen, HandoffSettings(**settings))  # type: ignore[arg-type]


def agent(name: str, *departments: str, tier: int = 1, role: Role = "agent", capacity: int = 3) -> Agent:
    return Agent(name, tuple(departments) or ("general",), tier=tier, role=role, capacity=capacity)


def route(
    department: str = "general", tier: int = 1, priority: str = "normal", code: str = "asked_for_person"
) -> Route:
    return Route(department, tier, rules().priority(priority), (Reason(code, "test"),))
