"""Rigi queue server: tickets, dispatch, realtime feeds and pages for public service halls."""
