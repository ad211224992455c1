"""FAISS indexes over avrep embeddings: choose/build/add (`build_index`), open and search (`Index`)."""

from avrep.errors import require

# faiss comes from an extra (setup.cfg): faiss-cpu and faiss-gpu both install the `faiss` module, so avrep
# depends on neither directly and [cpu] or [gpu] picks one
require("faiss", "cpu", "avrep index/search/serve", "(or 'avrep[gpu]' for faiss-gpu, CUDA 12)")

from avrep.index.build import add_to_index, build_index, merge_shards, train_quantizer  # noqa: E402
from avrep.index.choose import choose_index, parse_memory  # noqa: E402
from avrep.index.rerank import search_matched  # noqa: E402
from avrep.index.search import Index, SearchResult, embed_query  # noqa: E402

__all__ = [
    "Index",
    "SearchResult",
    "add_to_index",
    "build_index",
    "choose_index",
    "embed_query",
    "merge_shards",
    "parse_memory",
    "search_matched",
    "train_quantizer",
]
