"""The User table. Emails are stored normalized (stripped, lower-case), so a plain unique
constraint makes them unique case-insensitively on every database."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from chassis.storage import SESSION_OPTIONS, Timestamps, iso_utc

db = SQLAlchemy(session_options=SESSION_OPTIONS)


class User(Timestamps, db.Model):
    __tablename__ = "users"
    # A deleted user's id is never given to another (orders keep their user_id as history):
    # SQLite reuses the largest id without AUTOINCREMENT; chassis.storage upgrades old files.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)

    def to_json(self) -> dict:
        """The API's user; also called as User.to_json(row) on a Core row of the table."""
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
        }
