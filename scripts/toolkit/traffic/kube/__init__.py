"""Cluster traffic backends: HTTPRoute weights, replica ratio, Service selector, rolling."""
