"""Generated code of gatekeeper.api.v1; regenerate with `make protos`."""
