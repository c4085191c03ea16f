"""Tests of the service's database: migrations, writes, outages."""
