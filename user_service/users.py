"""The /users resource.

Deleting a user who has orders is allowed (204). Each service owns its database, so
user-service cannot see orders without calling order-service on every delete, which would make
deletes depend on order-service being up. Orders keep the user_id as history and stay readable
and movable; order-service refuses new orders for the deleted user (its check gets 404 -> 422).
"""

from flask import Blueprint, jsonify, url_for
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from chassis.errors import APIError
from chassis.inputs import json_body, page_params
from chassis.pages import read_page
from chassis.responses import ServiceResponse
from chassis.storage import MAX_ID, read_by_id
from user_service.models import User, db
from user_service.validation import clean_user

users = Blueprint("users", __name__, url_prefix="/users")

# Reads are Core statements on the model's table, outside the ORM session (chassis.storage:
# read_by_id compiles this one once per app; lists: chassis.pages).
USERS = User.__table__
USER_BY_ID = select(USERS).where(USERS.c.id == bindparam("id"))


@users.get("")
def list_users():
    # In id order from the primary key (chassis.pages).
    return read_page(USERS, [], page_params(), User.to_json)


@users.get("/<int:user_id>")
def get_user(user_id: int):
    row = read_by_id(USER_BY_ID, user_id)
    if row is None:
        raise not_found(user_id)
    return User.to_json(row)


@users.post("")
def create_user():
    user = User(**clean_user(json_body(), partial=False))
    db.session.add(user)
    commit_unique_email()
    response = jsonify(user.to_json())
    response.status_code = 201
    response.headers["Location"] = url_for("users.get_user", user_id=user.id)
    return response


@users.put("/<int:user_id>")
def replace_user(user_id: int):
    return update_user(user_id, partial=False)


@users.patch("/<int:user_id>")
def patch_user(user_id: int):
    return update_user(user_id, partial=True)


@users.delete("/<int:user_id>")
def delete_user(user_id: int):
    # Orders are kept: see the module docstring.
    db.session.delete(find_user(user_id))
    db.session.commit()
    return ServiceResponse(status=204)


def update_user(user_id: int, partial: bool):
    fields = clean_user(json_body(), partial=partial)
    user = find_user(user_id)
    for name, value in fields.items():
        setattr(user, name, value)
    commit_unique_email()
    return user.to_json()


def find_user(user_id: int) -> User:
    user = db.session.get(User, user_id) if user_id <= MAX_ID else None
    if user is None:
        raise not_found(user_id)
    return user


def not_found(user_id: int) -> APIError:
    return APIError(404, "not_found", f"user {user_id} not found")


def commit_unique_email() -> None:
    """Commit; the unique index on the normalized email decides races between writers."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise APIError(
            409,
            "email_taken",
            "a user with this email already exists",
            {"email": "already registered"},
        ) from None
