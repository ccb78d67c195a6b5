"""Appointments that cannot be gamed: a booking calendar, one-time codes, check-in at the kiosk."""
