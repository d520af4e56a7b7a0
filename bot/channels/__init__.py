"""Channels: translate a platform's updates into Inbound and Outbound into platform calls, nothing more."""
