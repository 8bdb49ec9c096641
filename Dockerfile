# One image for the workers and the search service. The default installs the full pinned stack
# (requirements.lock, with torch: MiniLM and checkpoints). For an ONNX export
# (ACEBERT_ENCODER=onnx-int8:DIR) build the serving set instead, without torch:
#   docker build --build-arg REQUIREMENTS=requirements-serving.lock -t acebert-search:serving .
FROM python:3.11-slim
ARG REQUIREMENTS=requirements.lock
# UV_COMPILE_BYTECODE: compile the packages at build time. The unprivileged user below cannot write .pyc files
# into site-packages, so without it every process would compile torch and its stack from source again.
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 UV_CACHE_DIR=/root/.cache/uv UV_COMPILE_BYTECODE=1
WORKDIR /app
RUN pip install --no-cache-dir uv
COPY requirements.lock requirements-serving.lock ./
RUN uv pip install --system -r ${REQUIREMENTS}
COPY . .
RUN uv pip install --system --no-deps -e . \
    && useradd --system --uid 10001 --home-dir /app --no-create-home app
# The workers and the API run unprivileged.
USER app
CMD ["hybrid-search", "serve", "--host", "0.0.0.0", "--port", "8000"]
