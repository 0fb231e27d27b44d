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
ENV PORT=8000
EXPOSE 8000
CMD ["gunicorn", "-c", "python:gateway.gunicorn_conf", "gateway.wsgi:app"]
