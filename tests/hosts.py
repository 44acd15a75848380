"""Host apps for the tests: one whose payer is the user, one whose payer is a team.

They are small real Flask apps with Flask-Login and their own models, plugging billing in
exactly as the README tells a host to.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

from flask import Flask, has_app_context, request
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flask_subscriptions import BillingAccountMixin, Clock, Subscriptions, SupportAccess
from flask_subscriptions.gateways.sandbox import SandboxGateway


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Team(BillingAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "host_teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    members: Mapped[list[User]] = relationship(back_populates="team", lazy="selectin")

    @property
    def billing_id(self) -> str:
        return f"team-{self.id}"

    def billing_owner_emails(self) -> Sequence[str]:
        return [m.email for m in self.members if m.role == "owner"]

    def is_billing_owner(self, user: Any) -> bool:
        return isinstance(user, User) and user.team_id == self.id and user.role == "owner"


class User(UserMixin, BillingAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "host_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("host_teams.id"))
    role: Mapped[str] = mapped_column(String(10), default="owner")
    team: Mapped[Team | None] = relationship(back_populates="members")


class IsolatedClient(FlaskClient):
    """A test client whose requests get their own app context, as in production.

    Flask reuses an app context the test already pushed, which would share ``g`` (and the
    signed-in user) and the database session between the test and every request. Before a
    request, the test's own transaction is committed, so the request sees the test's rows
    and no SQLite write lock is held against it.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            db.session.commit()
        return contextvars.Context().run(super().open, *args, **kwargs)


def create_host(
    database_url: str, clock: Clock, gateway: SandboxGateway, *, payer: str, **config: Any
) -> tuple[Flask, Subscriptions]:
    """A host app: ``payer="user"`` bills each user; ``payer="team"`` bills the user's team."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret",
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        SUBSCRIPTIONS_SCHEDULER_ENABLED=False,
        MAIL_DEFAULT_SENDER="billing@host.example",
        MAIL_SUPPRESS_SEND=True,
        SERVER_NAME="host.test",
    )
    app.config.update(config)
    app.test_client_class = IsolatedClient
    db.init_app(app)
    login = LoginManager(app)

    @login.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))

    @app.get("/login")
    def login_page() -> str:
        return f"sign in please; next={request.args.get('next', '')}"

    @app.post("/test-login/<int:user_id>")
    def test_login(user_id: int) -> str:
        login_user(db.session.get(User, user_id))
        return "ok"

    login.login_view = "login_page"
    subscriptions = Subscriptions(db=db)

    if payer == "team":

        @subscriptions.current_account_loader
        def acting() -> Team | None:
            return current_user.team if current_user.is_authenticated else None

        @subscriptions.account_loader
        def load_team(account_id: str) -> Team | None:
            _, _, raw = account_id.partition("-")
            return db.session.get(Team, int(raw)) if raw.isdigit() else None
    else:

        @subscriptions.account_loader
        def load_user_account(account_id: str) -> User | None:
            return db.session.get(User, int(account_id)) if account_id.isdigit() else None

        @subscriptions.accounts_loader
        def load_user_accounts(account_ids: list[str]) -> dict[str, User]:
            ids = [int(i) for i in account_ids if i.isdigit()]
            users = db.session.scalars(select(User).where(User.id.in_(ids)))
            return {user.billing_id: user for user in users}

    @subscriptions.support_loader
    def support(user: User) -> SupportAccess | None:
        """``support`` people may act; ``viewer`` support may only look (R-OPS-1)."""
        if user.role in ("support", "viewer"):
            return SupportAccess(user.email, can_act=user.role == "support")
        return None

    subscriptions.init_app(app, gateway=gateway, clock=clock)
    return app, subscriptions
