"""Threat-intelligence feeds: TAXII 2.1 collections, MISP feeds, CSV and text IOC lists, STIX bundles."""
