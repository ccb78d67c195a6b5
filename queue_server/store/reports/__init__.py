"""Reports from the event log: the projector that keeps visit facts, and the report queries."""
