"""Batch work spread over Ray: embedding for ``qa index --ray`` and answering for
``qa ask --input ... --ray``.

Both run Ray Data ``map_batches`` with a callable class on a fixed actor pool, so each
actor loads the encoder (or opens the index) once and then serves many batches. Rows
carry their position and are put back in input order here: results equal the
single-process ones whatever order the actors finish in.

Ray is optional (``pip install 'qa[scale]'``) and imported only in this module.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import RetrievalConfig, load_config
from .encoders import load_encoder
from .errors import QAError

INSTALL_HINT = "Ray is not installed: pip install 'qa[scale]'"
DEFAULT_ACTORS = 2
CONNECT_TIMEOUT_S = 5.0


def _ray():  # type: ignore[no-untyped-def]
    try:
        import ray
        import ray.data  # noqa: F401  (ray[data]: the pyarrow/pandas extras)
    except ImportError as exc:
        raise QAError(INSTALL_HINT) from exc
    return ray


def init_ray(address: str | None = None):  # type: ignore[no-untyped-def]
    """Connect to the Ray cluster at ``address``, or start a local one without dashboard.

    ``address`` is ``host:port``, ``ray://host:port`` or ``"auto"`` (``RAY_ADDRESS`` or the
    cluster ``ray start`` runs here). Reuses a Ray already initialised in this process.

    Raises:
        QAError: Ray is not installed, or no cluster answers at ``address``.
    """
    ray = _ray()
    if not ray.is_initialized():
        if address:
            _check_reachable(address)
        try:
            ray.init(
                # "local": a new Ray here, not one that RAY_ADDRESS or a stale
                # /tmp/ray/ray_current_cluster points at (ask for those with "auto").
                address=address or "local",
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,  # actor errors still come back as exceptions
                # Actors on other machines open a Qdrant cluster index with the same key.
                runtime_env={"env_vars": {"QDRANT_API_KEY": os.environ["QDRANT_API_KEY"]}} if os.environ.get("QDRANT_API_KEY") else None,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if not address:
                raise QAError(f"cannot start a local Ray ({type(exc).__name__}: {exc}); see `ray status`, or run without --ray") from exc
            # Ray 2.60 clusters use token authentication by default, and a client given an
            # explicit address sends the token only when told to.
            raise QAError(
                f"cannot connect to Ray at {address} ({type(exc).__name__}: {exc}); check the address with `ray status`, "
                "and for a cluster with token authentication set RAY_AUTH_MODE=token (token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
            ) from exc
    # Ray Data logs each dataset's plan at INFO; its progress bars (on a terminal) stay.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds on a wrong ``host:port``: Ray itself retries for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local" and the like: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise QAError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); "
            "start one with `ray start --head`, check the address, or use --ray alone for a local Ray"
        ) from exc


def _run(dataset) -> Iterator[dict[str, np.ndarray]]:  # type: ignore[no-untyped-def]
    """The dataset's batches; a worker's failure becomes one QAError line, not a Ray trace."""
    from ray.exceptions import RayError

    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except RayError as exc:
        raise QAError(f"a Ray worker failed: {_root_message(exc)} (full trace in the worker logs, /tmp/ray/session_latest/logs)") from exc


def _root_message(exc: BaseException) -> str:
    """The error behind a Ray error: a qa error's own message, else the last
    ``Type: message`` line of the worker's traceback (Ray passes most causes as text)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, QAError):
            return str(seen)
        seen = getattr(seen, "cause", None) or seen.__cause__
    raised = re.findall(r"^([\w.]+(?:Error|Exception|Interrupt)): (.+)$", str(exc), flags=re.MULTILINE)
    for prefix in ("qa.errors.", ""):  # ours first, then any but Ray's own wrappers
        for name, message in reversed(raised):
            if name.startswith(prefix) and not name.startswith("ray."):
                return message if prefix else f"{name.rsplit('.', 1)[-1]}: {message}"
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def _pool_size(ray, actors: int | None, batches: int) -> int:  # type: ignore[no-untyped-def]
    if actors is not None:
        if actors < 1:
            raise QAError(f"actors must be at least 1, got {actors}")
        return actors
    cpus = int(ray.cluster_resources().get("CPU", DEFAULT_ACTORS))
    return max(1, min(cpus, batches))


def _map_in_order(address: str | None, column: str, values: Sequence, actor: type, kwargs: dict, batch_size: int, actors: int | None):  # type: ignore[no-untyped-def]
    """Run ``actor`` (loaded once per actor, ``kwargs`` to its constructor) over ``values`` on
    a Ray actor pool; yield the output batches, whose ``row`` column holds each row's input
    position (batches come back in any order)."""
    ray = init_ray(address)
    batches = math.ceil(len(values) / batch_size)
    dataset = ray.data.from_items(
        [{"row": i, column: v} for i, v in enumerate(values)],
        override_num_blocks=batches,
    ).map_batches(
        actor,
        fn_constructor_kwargs=kwargs,
        compute=ray.data.ActorPoolStrategy(size=_pool_size(ray, actors, batches)),
        batch_size=batch_size,
        batch_format="numpy",
        num_cpus=1,
        udf_modifying_row_count=False,
    )
    yield from _run(dataset)


def _one_thread(encoder) -> None:  # type: ignore[no-untyped-def]
    """Each actor holds one CPU; more onnxruntime threads would only fight the other actors
    for the same cores (USE vectors do not depend on the thread count)."""
    if hasattr(encoder, "query_threads"):  # e5: one OpenMP thread per actor, as many actors as cores
        encoder.query_threads = encoder.batch_threads = 1
    elif hasattr(encoder, "threads"):  # USE: onnxruntime's intra-op threads
        encoder.threads = 1


def _model_source(model: str) -> str:
    """A local model folder given relative to here, made absolute for the workers."""
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


class _EncodeActor:
    """One per actor: loads the encoder once, then embeds batch after batch."""

    def __init__(self, model: str) -> None:
        self.encoder = load_encoder(model)
        _one_thread(self.encoder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


class RayEncoder:
    """An encoder whose ``encode`` spreads the texts over a pool of Ray actors.

    ``build_index`` hands it all the texts at once (``distributes = True``). Vectors come
    back in input order and equal those of ``load_encoder(model)`` run here.

    Example:
        >>> encoder = RayEncoder("use-multilingual", actors=2)
        >>> build_index("corpus", "index", encoder=encoder)
        >>> encoder.encode(["Bonjour", "Hello"]).shape  # (2, 384)
    """

    distributes = True

    def __init__(self, model: str, address: str | None = None, actors: int | None = None, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise QAError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.address = address
        self.actors = actors
        self.batch_size = batch_size
        self._local = load_encoder(model)  # id and dim for the manifest, and questions; models load lazily
        self.id: str = self._local.id
        self.dim: int = self._local.dim

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        if query:  # a question is one short text: here, not worth a round trip
            return self._local.encode(texts, query=True)
        kwargs = {"model": _model_source(self.model)}
        seen = 0
        for batch in _map_in_order(self.address, "text", texts, _EncodeActor, kwargs, self.batch_size, self.actors):
            out[batch["row"]] = batch["vector"]
            seen += len(batch["row"])
        if seen != len(texts):
            raise QAError(f"Ray returned {seen} vectors for {len(texts)} texts; rerun the command")
        return out


class _AnswerActor:
    """One per actor: opens the index (and its encoder) once, then answers batches."""

    def __init__(self, index: str, config: RetrievalConfig, k: int | None, lang: str | None, doc: str | None) -> None:
        from .answer import Assistant

        self.assistant = Assistant.open(index, config=config)
        _one_thread(self.assistant.encoder)
        self.options = {"k": k, "lang": lang, "doc": doc}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = []
        for question in batch["question"]:
            try:
                record: dict[str, Any] = self.assistant.ask(str(question), **self.options).to_dict()  # type: ignore[arg-type]
            except (QAError, ValueError) as exc:
                record = {"error": str(exc)}
            # JSON text: one flat column for Arrow; floats round-trip exactly.
            records.append(json.dumps(record, ensure_ascii=False))
        return {"row": batch["row"], "record": np.asarray(records, dtype=object)}


def answer_batch(
    index: str | Path,
    questions: list[tuple[str | int, str]],
    *,
    config: RetrievalConfig | None = None,
    k: int | None = None,
    lang: str | None = None,
    doc: str | None = None,
    address: str | None = None,
    actors: int | None = None,
    batch_size: int = 8,
) -> list[dict]:
    """Answer ``(id, question)`` pairs on a pool of Ray actors, each holding the index.

    Returns:
        One dict per question, in input order: ``{"id": id, **Answer.to_dict()}``, or
        ``{"id": id, "error": message}`` for a question that ``Assistant.ask`` refuses.

    Raises:
        QAError: Ray is missing or unreachable, or the index cannot be opened.

    Example:
        >>> records = answer_batch("index", [("q1", "Who founded NATO?")])
        >>> records[0]["id"], records[0]["abstained"]
    """
    from .index import Index

    if not questions:
        return []
    index = Path(index).resolve()  # the workers' working directory is not ours
    Index.load(index)  # a missing or damaged index fails here, once, with its own message
    # qa.toml is read here: the workers do not run in this directory.
    config = config or load_config().retrieval
    kwargs = {"index": str(index), "config": config, "k": k, "lang": lang, "doc": doc}
    results: list[dict | None] = [None] * len(questions)
    for batch in _map_in_order(address, "question", [q for _, q in questions], _AnswerActor, kwargs, batch_size, actors):
        for row, record in zip(batch["row"], batch["record"]):
            results[int(row)] = {"id": questions[int(row)][0], **json.loads(record)}
    missing = sum(r is None for r in results)
    if missing:
        raise QAError(f"Ray returned no answer for {missing} of {len(questions)} questions; rerun the command")
    return results  # type: ignore[return-value]
