"""qa: document-grounded question answering over French and English documents."""

from .answer import Answer, Assistant, Citation, Evidence  # noqa: E402
from .chunking import Chunk  # noqa: E402
from .config import ChunkingConfig, Config, RetrievalConfig, load_config  # noqa: E402
from .errors import CorpusError, IndexMismatchError, IndexNotFoundError, InputError, QAError  # noqa: E402
from .index import BuildReport, Index, build_index  # noqa: E402
from .version import __version__

__all__ = [
    "Answer",
    "Assistant",
    "BuildReport",
    "Chunk",
    "ChunkingConfig",
    "Citation",
    "Config",
    "CorpusError",
    "Evidence",
    "Index",
    "IndexMismatchError",
    "IndexNotFoundError",
    "InputError",
    "QAError",
    "RetrievalConfig",
    "build_index",
    "load_config",
    "__version__",
]
