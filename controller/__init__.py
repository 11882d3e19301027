"""Kubernetes controller that moves canary traffic on the gatekeeper's verdicts."""
