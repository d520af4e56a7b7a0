"""Relevo's handoff side: the store, escalation policy, queues, routing, SLA and the agent API."""
