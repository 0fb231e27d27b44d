"""`python -m user_service`: run user-service under gunicorn exactly as deployed."""

from chassis.launch import exec_gunicorn

if __name__ == "__main__":
    exec_gunicorn("user_service")
