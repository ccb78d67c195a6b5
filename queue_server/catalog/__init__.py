"""The organisation a server runs: agencies, services, branches, counters, announcement phrases."""
