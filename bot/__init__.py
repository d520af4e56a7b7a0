"""Relevo's conversation engine and its channels."""
