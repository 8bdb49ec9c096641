# One image for the workers and the search service; the pinned stack is requirements.lock.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 UV_CACHE_DIR=/root/.cache/uv
WORKDIR /app
RUN pip install --no-cache-dir uv
COPY requirements.lock .
RUN uv pip install --system -r requirements.lock
COPY . .
RUN uv pip install --system --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home app
# The workers and the API run unprivileged.
USER app
CMD ["hybrid-search", "serve", "--host", "0.0.0.0", "--port", "8000"]
