"""`python -m order_service`: run order-service under gunicorn exactly as deployed."""

from chassis.launch import exec_gunicorn

if __name__ == "__main__":
    exec_gunicorn("order_service")
