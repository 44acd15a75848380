"""The example host's own tables: users, a team, and who owns what."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ColumnElement, ForeignKey, String, bindparam, case, cast, literal, select
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, relationship

from flask_subscriptions import BillingAccountMixin, SupportAccess
from flask_subscriptions.services.profiles import ensure_profile, stored_locale_of


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Team(BillingAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    """A payer with several owners (R-NOTE-2, R-SEC-2)."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    members: Mapped[list[User]] = relationship(back_populates="team")

    @property
    def billing_id(self) -> str:
        return f"team-{self.id}"

    def billing_owner_emails(self) -> Sequence[str]:
        return [m.email for m in self.members if m.role == "owner"]

    def is_billing_owner(self, user: Any) -> bool:
        return isinstance(user, User) and user.team_id == self.id and user.role == "owner"


class User(UserMixin, BillingAccountMixin, db.Model):  # type: ignore[name-defined,misc]
    """A person; pays for itself unless it belongs to a team."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    role: Mapped[str] = mapped_column(String(10), default="owner")
    team: Mapped[Team | None] = relationship(back_populates="members")

    @property
    def billing_id(self) -> str:
        return f"user-{self.id}"

    @property
    def account(self) -> Team | User:
        """The account this person acts for."""
        return self.team if self.team is not None else self


def load_signed_in(user_id: int) -> tuple[User, str | None] | None:
    """The signed-in person, their team, and the stored billing language of the account they
    act for, in one statement: every page asks for the person (Flask-Login) and for the
    language (the locale selector), and a second query for the language cost as much as
    the first."""
    row = db.session.execute(_SIGNED_IN, {"user_id": user_id}).first()
    return None if row is None else (row[0], row[1])


def _acting_billing_id() -> ColumnElement[str]:
    """SQL: ``User.account.billing_id`` (the team's when the person is in one)."""
    return case(
        (User.team_id.is_not(None), literal("team-") + cast(User.team_id, String)),
        else_=literal("user-") + cast(User.id, String),
    )


#: Built once: building a statement costs more than running it.
_SIGNED_IN = (
    select(User, stored_locale_of(_acting_billing_id()))
    .options(joinedload(User.team))
    .where(User.id == bindparam("user_id"))
)


def load_account(account_id: str) -> Team | User | None:
    kind, _, raw = account_id.partition("-")
    if not raw.isdigit():
        return None
    model = {"team": Team, "user": User}.get(kind)
    return db.session.get(model, int(raw)) if model else None


DEMO_PEOPLE = (
    # name, e-mail, team, role
    ("alice", "alice@example.com", None, "owner"),
    # solo users who read Japanese and Korean and pay in yen and won (R-I18N-1)
    ("hana", "hana@example.jp", None, "owner"),
    ("minjun", "minjun@example.kr", None, "owner"),
    ("olivia", "olivia@acme.example", "Acme", "owner"),
    ("oscar", "oscar@acme.example", "Acme", "owner"),
    ("mike", "mike@acme.example", "Acme", "member"),
    # the demo support person (R-EX-4): opens the support console, owns no billing
    ("sam", "sam@example.com", None, "support"),
)


#: The demo people's language and billing currency, kept on their billing profiles: the
#: language their e-mails and receipts are written in, the currency their prices are in.
DEMO_BILLING = {"hana": ("ja", "JPY"), "minjun": ("ko", "KRW")}


def seed_demo_people() -> None:
    """Add the demo people who are missing (an older demo database gains sam, hana and
    minjun too), with hana's and minjun's language and currency."""
    present = set(db.session.scalars(select(User.name)))
    teams = {team.name: team for team in db.session.scalars(select(Team))}
    for name, email, team_name, role in DEMO_PEOPLE:
        if name in present:
            continue
        team = None
        if team_name:
            team = teams.setdefault(team_name, Team(name=team_name))
        db.session.add(User(name=name, email=email, team=team, role=role))
    db.session.commit()
    for name, (language, currency) in DEMO_BILLING.items():
        user = db.session.scalar(select(User).where(User.name == name))
        if user is not None:
            profile = ensure_profile(user.billing_id)
            profile.locale = profile.locale or language
            profile.currency = profile.currency or currency
    db.session.commit()


def support_access(user: Any) -> SupportAccess | None:
    """Who may open the support console (R-OPS-1): the demo's support people, who may act."""
    if isinstance(user, User) and user.role == "support":
        return SupportAccess(user.email, can_act=True)
    return None
