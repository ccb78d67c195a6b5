"""Channels behind one contract (`base.Channel`), one module each, chosen by URL."""
