"""Incident response: alerts grouped into incidents, the incident workflow, SLAs and playbooks."""
