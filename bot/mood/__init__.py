"""Upset and frustration signals in Spanish and English: scores, evidence and the detector."""

from bot.mood.detector import MoodDetector, MoodReading
from bot.mood.lexicon import MoodConfigError

__all__ = ["MoodConfigError", "MoodDetector", "MoodReading"]
