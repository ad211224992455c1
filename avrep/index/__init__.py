"""FAISS indexes over avrep embeddings: choose/build/add (`build_index`), open and search (`Index`)."""

from avrep.index.build import add_to_index, build_index, merge_shards, train_quantizer
from avrep.index.choose import choose_index, parse_memory
from avrep.index.search import Index, SearchResult, embed_query

__all__ = [
    "Index",
    "SearchResult",
    "add_to_index",
    "build_index",
    "choose_index",
    "embed_query",
    "merge_shards",
    "parse_memory",
    "train_quantizer",
]
