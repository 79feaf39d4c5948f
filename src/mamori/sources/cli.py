"""``mamori sources``: the log sources Mamori reads, the products behind them, their OCSF mapping and
the SigmaHQ log sources their events serve."""

from __future__ import annotations

import json

import click

from mamori.events.logsources import builtin_table, entries_by_source
from mamori.events.ocsf import builtin_tables
from mamori.sources.catalog import products_of
from mamori.sources.registry import all_sources


def source_rows() -> list[dict[str, object]]:
    """One row per source: name, description, sniff priority, products, OCSF table, Sigma log sources."""
    grouped = entries_by_source(builtin_table())
    tables = builtin_tables()
    rows: list[dict[str, object]] = []
    for name, spec in all_sources().items():
        served = sorted({e.serves.label() for e in grouped.get(name, [])})
        table = tables.get(name)
        rows.append({
            "name": name,
            "description": spec.description,
            "priority": spec.priority,
            "products": products_of(name),
            "ocsf": table.origin if table else None,
            "sigma_logsources": served,
        })
    return rows


@click.command("sources")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--name", help="Show one source only.")
def sources(as_json: bool, name: str | None) -> None:
    """List the log sources Mamori reads (for ``mamori hunt --source NAME``), their OCSF mapping file
    and the SigmaHQ log sources (product/category/service) their events serve."""
    rows = [r for r in source_rows() if name is None or r["name"] == name]
    if name is not None and not rows:
        raise click.UsageError(f"unknown source {name!r}; known: {', '.join(all_sources())}")
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['name']}  —  {row['description']}")
        products = row["products"]
        if products:
            click.echo(f"    products: {', '.join(products)}")  # type: ignore[arg-type]
        click.echo(f"    OCSF mapping: {row['ocsf'] or '(none)'}")
        served = row["sigma_logsources"]
        click.echo(f"    Sigma log sources: {', '.join(served) if served else '(none)'}")  # type: ignore[arg-type]
