"""Which source reads which product: the products analysts name (FortiGate, Entra ID, ESXi...) and
the Mamori source that reads their logs, for ``mamori sources``, the coverage benchmark and tests."""

from __future__ import annotations

PRODUCTS: dict[str, str] = {
    # product family (as the raw-log samples name them) -> source
    "apache": "webaccess",
    "nginx": "webaccess",
    "aws-cloudtrail": "cloudtrail",
    "azure-activity": "azure",
    "azure-ad": "azure",
    "entra-id-graph": "azure",
    "o365": "m365",
    "m365-defender": "m365",
    "okta": "okta",
    "gcp-audit": "gcp_audit",
    "kubernetes-audit": "k8s_audit",
    "github-audit": "github_audit",
    "suricata": "suricata",
    "fortigate": "fortigate",
    "paloalto-ngfw": "paloalto",
    "cisco-asa": "cisco_asa",
    "checkpoint": "checkpoint",
    "juniper-srx": "juniper",
    "cef": "cef",
    "trendmicro-apex-one": "cef",
    "sophos-firewall": "keyvalue",
    "netfilter": "syslog",
    "openssh": "syslog",
    "postfix": "syslog",
    "bind-dns": "bind",
    "squid": "squid",
    "vmware-esxi": "esxi",
    "openvpn": "openvpn",
    "ocsf": "ocsf",
    "windows": "winjson",
}

LOGHUB: dict[str, str] = {
    "Linux_2k.log": "syslog",
    "OpenSSH_2k.log": "syslog",
    "Apache_2k.log": "webaccess",
    "Mac_2k.log": "syslog",
}


def products_of(source: str) -> list[str]:
    """Return the product families a source reads (for listings)."""
    return sorted(p for p, s in PRODUCTS.items() if s == source)
