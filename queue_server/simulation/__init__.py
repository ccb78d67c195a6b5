"""A discrete-event simulator of a service hall that drives the real dispatcher and estimator.

`scenario` reads a hall from YAML, `arrivals` draws a day of visits, `policies` holds the ways a
counter can pick its next visitor (one line per counter, pooled first come first served, Rigi's
dispatcher), `engine` runs a day, `metrics` and `report` turn runs into tables and plots, and
`cli` is `queue-server simulate`.
"""
