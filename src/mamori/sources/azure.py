"""Microsoft Azure and Entra ID logs as diagnostic settings export them (``{"records": [...]}`` blobs or
Event Hub JSON), and as the Graph API returns them: Azure Activity, Entra ID sign-in logs, audit logs,
risk detections and PIM (``directoryAudits`` / ``signIns`` / ``riskDetections`` objects).

Fields keep the export's names dotted (``operationName``, ``resultType``, ``properties.status.errorCode``,
``activityDisplayName``, ``initiatedBy.user.userPrincipalName``...). ``azure_log`` names the SigmaHQ
service an event serves: ``activitylogs``, ``signinlogs``, ``auditlogs``, ``riskdetection``, ``pim``;
``azure_shape`` says whether it came as a diagnostic-settings record (fields under ``properties.``) or
a Graph API object (fields at the top), so the mapping can alias rule fields to either.
"""

from __future__ import annotations

import polars as pl

from mamori.sources.base import ReadOptions
from mamori.sources.batch import finish_json, json_fields, json_head_has, json_source
from mamori.sources.json_templates import template_fields

SOURCE = "azure"
TIMES = ("time", "activityDateTime", "createdDateTime", "eventTimestamp", "detectedDateTime", "activityDate",
         "TimeGenerated")
SIGNIN_CATEGORIES = ["SignInLogs", "NonInteractiveUserSignInLogs", "ServicePrincipalSignInLogs",
                     "ManagedIdentitySignInLogs", "ADFSSignInLogs"]
RISK_CATEGORIES = ["UserRiskEvents", "RiskyUsers", "RiskyServicePrincipals", "ServicePrincipalRiskEvents"]


def _log_kind(frame: pl.DataFrame, options: ReadOptions) -> pl.DataFrame:
    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in frame.columns else pl.lit(None, dtype=pl.Utf8)

    category = col("category")
    kind = (
        pl.when(category.is_in(SIGNIN_CATEGORIES)).then(pl.lit("signinlogs"))
        .when(category.is_in(RISK_CATEGORIES)).then(pl.lit("riskdetection"))
        .when((category == "AuditLogs") & col("properties.loggedByService").str.contains("(?i)PIM|Privileged"))
        .then(pl.lit("pim"))
        .when(category == "AuditLogs").then(pl.lit("auditlogs"))
        .when(col("riskEventType").is_not_null()).then(pl.lit("riskdetection"))
        .when(col("loggedByService").str.contains("(?i)PIM|Privileged")).then(pl.lit("pim"))
        .when(col("activityDisplayName").is_not_null()).then(pl.lit("auditlogs"))
        .when(col("userPrincipalName").is_not_null() & col("appDisplayName").is_not_null()).then(pl.lit("signinlogs"))
        .when(col("resourceId").str.contains("(?i)^/subscriptions/") | col("eventDataId").is_not_null()
              | col("category").is_in(["Administrative", "Security", "ServiceHealth", "Alert", "Recommendation",
                                       "Policy", "Autoscale", "ResourceHealth"]))
        .then(pl.lit("activitylogs"))
        .otherwise(None)
    )
    shape = (pl.when(col("operationName").is_not_null() | col("resourceId").is_not_null()).then(pl.lit("diagnostic"))
             .otherwise(pl.lit("graph")))
    return frame.with_columns(kind.alias("azure_log"), shape.alias("azure_shape"))


def parse_azure(texts: pl.Series, options: ReadOptions) -> pl.DataFrame:
    """Parse Azure records as ``batch.json_parser(TIMES, extra=_log_kind)`` does. Diagnostic settings write
    the records of one category alike (same keys, same order, compact): a batch of a few kinds is read by
    their templates (``json_templates``), the same columns and values for less than Arrow's reader costs;
    any other batch is read as before (``json_fields``)."""
    frame = template_fields(texts)
    if frame is None:
        frame = json_fields(texts)
    return finish_json(frame, options, TIMES, (), _log_kind, "UTC")


def sniff_azure(head: bytes, name: str) -> bool:
    """Claim Azure / Entra exports: ``operationName`` with ``resourceId`` or ``tenantId``, or Graph objects."""
    return (json_head_has(head, '"operationName"') and json_head_has(head, '"resourceId"', '"tenantId"')
            and not json_head_has(head, '"AdvancedHunting-')) or json_head_has(
        head, '"activityDisplayName"', '"loggedByService"', need=2) or json_head_has(
        head, '"userPrincipalName"', '"appDisplayName"', '"createdDateTime"', need=3)


SPECS = [json_source(SOURCE, "Azure Activity and Entra ID sign-in / audit / risk logs (diagnostic settings "
                     "JSON, Graph API)", parse_azure, sniff_azure, priority=70)]
