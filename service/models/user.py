"""User and the ``follows`` association."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import String, Text, text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, validates

from service.models.base import Base, Timestamps, link_table

#: Who follows whom. The primary key serves "does A follow B" and the feed's
#: "whom does A follow"; the index serves "who follows B".
follows = link_table("follows", ("follower_id", "users.id"), ("followed_id", "users.id"))


def new_token_stamp() -> str:
    """A fresh random token stamp: every token issued before it stops working."""
    return secrets.token_hex(8)


def _lower_username(context: DefaultExecutionContext) -> Any:
    return context.get_current_parameters()["username"].lower()  # type: ignore[no-untyped-call]


class User(Timestamps, Base):
    """A registered account; its public face is the profile.

    ``username_lower`` makes usernames unique whatever their case (``JAKE``
    cannot register beside ``jake``) and is what lookups by name compare.
    ``token_stamp`` is carried in every token issued for the user; replacing it
    (password change, sign-out everywhere) revokes every earlier token, except
    the one whose SHA-256 is ``kept_token``: the token that changed the password.
    """

    __tablename__ = "users"
    # A deleted user's id is never given to a new account (SQLite would reuse the highest).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    username_lower: Mapped[str] = mapped_column(String(64), unique=True, default=_lower_username)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(2048))
    token_stamp: Mapped[str] = mapped_column(String(32), default=new_token_stamp)
    kept_token: Mapped[str | None] = mapped_column(String(64))
    #: Articles written and favorited, kept by triggers: the totals of ``?author=`` and ``?favorited=``.
    articles_count: Mapped[int] = mapped_column(server_default=text("0"))
    favorites_count: Mapped[int] = mapped_column(server_default=text("0"))

    @validates("username")
    def _keep_lower(self, _key: str, username: str) -> str:
        self.username_lower = username.lower()
        return username

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r})"
