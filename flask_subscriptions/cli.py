"""``flask subscriptions …``: set-up and jobs from the command line (cron, any worker)."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from .core.catalog import CatalogError, load_catalog_file
from .core.money import format_money
from .errors import UsageInvalid
from .fanout import TaskQueue, dispatch_all, dispatch_dunning, dispatch_renewals
from .jobs import run_due_jobs
from .messages import sentence
from .migrations import MigrationsError, upgrade
from .models import metadata
from .services.catalog import load_catalog
from .services.dunning import run_dunning
from .services.renewals import count_due, renew_due
from .services.usage import import_usage, read_csv
from .state import get_state
from .support_cli import support_cli


@click.group("subscriptions", cls=AppGroup, help="Subscription billing.")
@with_appcontext
def subscriptions_cli() -> None:
    """Before any command runs: a host set up with ``Subscriptions(app)`` registers its
    loaders after ``init_app``, so this is where a missing one is refused (R-OPS-5)."""
    get_state().require_loaders()


db_cli = AppGroup(
    "db", help="The billing tables: `upgrade` runs our migrations; `create` is for development."
)
catalog_cli = AppGroup("catalog", help="Plans, add-ons, prices and coupons.")
subscriptions_cli.add_command(db_cli)
subscriptions_cli.add_command(catalog_cli)
subscriptions_cli.add_command(support_cli)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the billing tables (and the gateway's own storage) to the latest revision.

    Run it on every deploy, before the web workers start: they create no table. A host whose
    own Alembic / Flask-Migrate lists our version location runs `flask db upgrade heads`
    instead, and this command says so.
    """
    state = get_state()
    try:
        revision = upgrade(state.db.engine)
    except MigrationsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Billing tables at revision {revision}.")
    gateway_upgrade = getattr(state.gateway, "upgrade_storage", None)
    if callable(gateway_upgrade):
        at = gateway_upgrade()
        click.echo(f"{type(state.gateway).__name__} storage ready" + (f" ({at})." if at else "."))


@db_cli.command("create")
def db_create() -> None:
    """Create the tables that do not exist yet, without migrations: for development only
    (nothing records a revision, so a later `db upgrade` cannot tell what is there)."""
    state = get_state()
    metadata.create_all(state.db.engine)
    gateway_create = getattr(state.gateway, "create_storage", None)
    if callable(gateway_create):
        gateway_create()
    click.echo(f"Billing tables ready ({len(metadata.tables)} tables).")


@catalog_cli.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def catalog_load(path: str) -> None:
    """Load a TOML catalog; loading the same file again changes nothing."""

    try:
        catalog = load_catalog_file(path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(load_catalog(catalog)))


#: ``--on-workers`` on the job commands: hand the run to the task queue's workers.
on_workers_option = click.option(
    "--on-workers",
    is_flag=True,
    help="Enqueue the run for the task queue's workers (one task per batch) instead of "
    "running it in this process.",
)


def _queue() -> TaskQueue:
    queue = get_state().task_queue
    if queue is None:
        raise click.ClickException(
            "No task queue: register one with flask_subscriptions.celery.init_celery(celery, "
            "app) (or celery_init_app(app)) in the app this command loads."
        )
    return queue


@subscriptions_cli.command("renew")
@on_workers_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=None,
    help="Gateway calls in flight at once (default: SUBSCRIPTIONS_RENEWAL_CONCURRENCY).",
)
def renew(concurrency: int | None, on_workers: bool) -> None:
    """Renew every subscription whose term has ended: safe to run from several machines."""

    state = get_state()
    if on_workers:
        click.echo(f"Enqueued {dispatch_renewals(_queue())}.")
        return
    due = count_due()
    state.session.commit()
    with click.progressbar(length=due, label=f"Renewing {due} due subscriptions") as bar:
        report = renew_due(concurrency=concurrency, progress=bar.update)
    click.echo(
        f"Renewed {report.renewed}, failed {report.failed}, pending {report.pending}, "
        f"expired {report.expired}."
    )
    for currency, amount in sorted(report.charged.items()):
        click.echo(
            f"Charged {format_money(amount, currency, state.settings.locale)} in {currency}."
        )


@subscriptions_cli.command("run-jobs")
@on_workers_option
def run_jobs(on_workers: bool) -> None:
    """Run every billing job once (renewals, reconciliation, mail): for cron or a worker."""

    if on_workers:
        for enqueued in dispatch_all(_queue()):
            click.echo(f"Enqueued {enqueued}.")
        return
    for job_id, result in run_due_jobs().items():
        click.echo(f"{job_id}: {result}")


@subscriptions_cli.command("dunning")
@on_workers_option
def dunning(on_workers: bool) -> None:
    """Take today's dunning actions: retries, warnings, restriction or move to Free."""

    if on_workers:
        click.echo(f"Enqueued {dispatch_dunning(_queue())}.")
        return
    click.echo(f"Dunning: {run_dunning()}.")


usage_cli = AppGroup("usage", help="Usage reports from your app: what each account uses.")
subscriptions_cli.add_command(usage_cli)


@usage_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def usage_import(path: str) -> None:
    """Import a CSV of account_id,metric,value[,reported_at] rows (a header line is
    optional; reported_at is ISO 8601, UTC unless it has an offset). A file with any bad
    row imports nothing, and every bad line is named."""

    try:
        summary = import_usage(read_csv(path))
    except UsageInvalid as exc:
        raise click.ClickException(sentence(exc)) from exc
    click.echo(str(summary))
