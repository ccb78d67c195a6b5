"""HTTP API: one declarative route table that drives routing, OpenAPI and permissions."""
