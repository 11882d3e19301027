"""Generated code of the wire contract (protos/gatekeeper/api/v1)."""
