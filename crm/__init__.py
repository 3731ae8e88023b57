"""CRM: staff and organisation, customers, leads, pools, allocation, tags, segments, follow-ups,
appointments, handover."""
