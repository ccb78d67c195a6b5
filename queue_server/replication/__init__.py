"""Branch nodes (docs/offline.md): a node ships its branch's event log to central."""
