# SAM Lab dashboard image.
#   docker build -t samlab .                                  # CPU-only torch (small image)
#   docker build -t samlab --build-arg TORCH_FLAVOR=cuda .    # CUDA torch (run with --gpus all)
#   docker run -p 8501:8501 -v "$PWD/runs:/data/runs" -v "$PWD/data:/data/datasets" samlab
#   (add -v samlab-steps:/data/cache to keep the compiled sweep steps across containers: sam_core/fused_store.py)
FROM python:3.11-slim

ARG TORCH_FLAVOR=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SAMLAB_RUNS_DIR=/data/runs \
    SAMLAB_DATA=/data/datasets \
    SAMLAB_STEP_CACHE=/data/cache/steps \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# g++: torch.compile builds the fused sweep step with it (without one the sweeps run eagerly, ~10x slower).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 samlab \
    && mkdir -p /app /data/runs /data/datasets /data/cache/steps \
    && chown -R samlab:samlab /app /data
WORKDIR /app

# Dependencies first, in their own cached layer: code edits do not reinstall torch.
COPY requirements.txt ./
RUN if [ "$TORCH_FLAVOR" = "cpu" ]; then \
        pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.4" "torchvision>=0.19"; \
    else \
        pip install "torch>=2.4" "torchvision>=0.19"; \
    fi \
    && pip install -r requirements.txt

COPY --chown=samlab:samlab . .
ENV PYTHONPATH=/app

USER 1000:1000
EXPOSE 8501
# python is always there (curl may not be): ask Streamlit's own health endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip()==b'ok' else 1)"]
# In a container the server must listen on all interfaces; outside one it defaults to 127.0.0.1.
# ui.serve: `streamlit run app.py` with torch and the core imported and the lab workers started first.
CMD ["python", "-m", "ui.serve", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
