"""Tests; the layout mirrors app/ and scripts/."""
