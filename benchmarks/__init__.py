"""Benchmarks of the gatekeeper: cost (``judge_cost``, ``grpc_load``) and decision quality."""
