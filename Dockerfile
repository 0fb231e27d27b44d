# One image for every service; docker-compose.yml picks the command per service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install '.[postgres]' \
    && useradd --system --uid 10001 --user-group --no-create-home switchyard

USER switchyard

# Defaults only; every setting comes from the environment (see README).
# No EXPOSE: each service listens on the PORT its environment sets (in docker-compose.yml
# the gateway on 8000, the domain services on 8080, each exposing its own), so one fixed
# port here would be wrong for most of the containers this image runs.
ENV PORT=8000
CMD ["gunicorn", "-c", "python:gateway.gunicorn_conf", "gateway.wsgi:app"]
