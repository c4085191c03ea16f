"""Tests of the traffic backends."""
