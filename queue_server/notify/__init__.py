"""Notifications: citizens told by SMS or e-mail when their turn is near, when they are called,
transferred and finished, and their answers ("late", "cancel"). See docs/notifications.md."""
