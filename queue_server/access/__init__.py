"""Who may do what: people (sessions), devices (tokens), one permission policy, rate limits."""
