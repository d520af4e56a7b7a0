"""Builders shared by the handoff queue tests: the real rules file, agents, routes."""

from __future__ import annotations

import functools
from pathlib import Path

import redis.asyncio as aioredis

from bot.settings import HandoffSettings
from handoff.agents import Agent, Role
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


def agent(name: str, *departments: str, tier: int = 1, role: Role = "agent", capacity: int = 3) -> Agent:
    return Agent(name, tuple(departments) or ("general",), tier=tier, role=role, capacity=capacity)


def route(
    department: str = "general", tier: int = 1, priority: str = "normal", code: str = "asked_for_person"
) -> Route:
    return Route(department, tier, rules().priority(priority), (Reason(code, "test"),))
