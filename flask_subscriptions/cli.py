"""``flask subscriptions …``: set-up and jobs from the command line (cron, any worker)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .core.catalog import CatalogError, load_catalog_file
from .extension import get_state
from .models import metadata

subscriptions_cli = AppGroup("subscriptions", help="Subscription billing.")
db_cli = AppGroup("db", help="The billing tables, for hosts without migrations.")
catalog_cli = AppGroup("catalog", help="Plans, add-ons, prices and coupons.")
subscriptions_cli.add_command(db_cli)
subscriptions_cli.add_command(catalog_cli)


@db_cli.command("create")
def db_create() -> None:
    """Create the subs_* tables that do not exist yet (existing ones are left alone)."""
    state = get_state()
    metadata.create_all(state.db.engine)
    click.echo(f"Billing tables ready ({len(metadata.tables)} tables).")


@catalog_cli.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def catalog_load(path: str) -> None:
    """Load a TOML catalog; loading the same file again changes nothing."""
    from .services.catalog import load_catalog

    try:
        catalog = load_catalog_file(path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(load_catalog(catalog)))
