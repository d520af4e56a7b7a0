"""Fixtures for the faq tests: the small bilingual knowledge base under fixtures/."""

from __future__ import annotations

from pathlib import Path

import pytest

from faq.loader import load_dir
from faq.matcher import Matcher
from faq.model import KnowledgeBase

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    result = load_dir(FIXTURES / "kb")
    assert result.kb is not None, [str(p) for p in result.errors]
    return result.kb


@pytest.fixture(scope="session")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb)
