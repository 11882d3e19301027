"""canary-gatekeeper: judge a canary against its baseline, and say why."""

__version__ = "0.1.0"
