"""Metric sources: where the gatekeeper fetches baseline and canary data for Analyze.

A :class:`~gatekeeper.sources.base.MetricSource` answers range queries; the built-in query
templates per mesh or ingress live in :mod:`gatekeeper.sources.queries`.
"""
