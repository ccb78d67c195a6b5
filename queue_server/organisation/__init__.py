"""The organisation edited live: stored versions, edits, and every process kept up to date."""
