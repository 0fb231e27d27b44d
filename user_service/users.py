"""The /users resource.

Deleting a user who has orders is allowed (204). Each service owns its database, so
user-service cannot see orders without calling order-service on every delete, which would make
deletes depend on order-service being up. Orders keep the user_id as history and stay readable
and movable; order-service refuses new orders for the deleted user (its check gets 404 -> 422).
"""

from flask import Blueprint, Response, jsonify, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from chassis.errors import APIError
from chassis.inputs import json_body, page_params
from chassis.storage import MAX_ID
from user_service.models import User, db
from user_service.validation import clean_user

users = Blueprint("users", __name__, url_prefix="/users")


@users.get("")
def list_users():
    limit, offset = page_params()
    total = db.session.scalar(select(func.count()).select_from(User))
    page = db.session.scalars(
        select(User).order_by(User.id).limit(limit).offset(offset)
    )
    return {
        "items": [user.to_json() for user in page],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@users.get("/<int:user_id>")
def get_user(user_id: int):
    return find_user(user_id).to_json()


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
    return Response(status=204)


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
        raise APIError(404, "not_found", f"user {user_id} not found")
    return user


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
