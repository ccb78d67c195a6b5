"""Reports at the edges: the projector running in the server, the report API and exports."""
