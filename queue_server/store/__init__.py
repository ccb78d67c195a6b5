"""Database layer: SQLAlchemy Core tables, the engine, the event log and the queue operations."""
