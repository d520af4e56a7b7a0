"""Relevo's knowledge base: load and validate FAQ files, match questions, decide whether to answer."""
