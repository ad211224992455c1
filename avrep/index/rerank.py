"""Audio <-> video search re-ranked by temporal matching: FAISS finds candidates with one pooled vector a clip,
then each candidate's per-frame sync features are matched frame by frame against the query's
(`avrep.eval.retrieval.match_scores`, offsets +-1). One pooled vector cannot say *when* the lips move; the
frame-by-frame match can, and on people the model never saw it finds the right clip far more often
(benchmarks/unseen.py: lrc_ar held-out anchors, 1:358, R@1 0.307 pooled -> 0.511 matched, shipped model).

The candidates' frames are read from the feature store the index was embedded from (its mouth crops and
landmarks), so an index built from a store re-ranks and one built from vectors alone cannot.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avrep.conventions import SAMPLES_PER_FRAME as SPF
from avrep.errors import AvrepError
from avrep.eval.retrieval import match_scores
from avrep.index.search import Index, SearchResult, index_embedder
from avrep.models.frames import stream_features

DEFAULT_CANDIDATES = 50  # FAISS candidates re-ranked per query (pooled R@50 bounds what re-ranking can find)


def source_store(index: Index) -> Path:
    """The feature store the index's embeddings were made from (recorded in the embeddings' manifest)."""
    emb = index.manifest.get("embeddings")
    man = Path(emb) / "manifest.json" if emb else None
    store = json.loads(man.read_text()).get("store") if man is not None and man.exists() else None
    if not store:
        raise AvrepError(
            f"{index.path}: its embeddings ({emb}) record no feature store, so there are no frames to re-rank "
            "with; search without re-ranking or embed from a store (`avrep embed`)",
            param="rerank",
        )
    if not (Path(store) / "clips.parquet").exists():
        raise AvrepError(
            f"{index.path}: the feature store it was embedded from ({store}) is not available here; "
            "search without re-ranking",
            param="rerank",
        )
    return Path(store)


def search_matched(
    index: Index,
    audio=None,
    video=None,
    k: int = 10,
    candidates: int = DEFAULT_CANDIDATES,
    where=None,
    device: str = "auto",
    max_offset: int = 1,
    cache: dict[str, np.ndarray] | None = None,
    embedder=None,
) -> SearchResult:
    """Search with one query and re-rank the top `candidates` by temporal matching: an `audio` query (a file,
    or float32 samples at the model's rate) against an index of videos, or a `video` query (a file, or a
    (mouth uint8 [T, 96, 96], landmarks [T, 68, 2]) pair as a feature store holds them) against an index of
    audio clips. Returns the best `k` with the match score (mean cosine of aligned frames, higher
    is better) as the score. The query is one clip, compared from its first frame with each candidate
    clip's first frame. `cache` (clip_id -> per-frame features), kept by the caller across queries, spares
    recomputing a clip's features when it is a candidate again; `embedder` (from
    `index_embedder(index.manifest)`) spares loading and hashing the model per query."""
    if (audio is None) == (video is None):
        raise AvrepError("give exactly one of audio or video to re-rank", param="rerank")
    want = "video" if audio is not None else "audio"
    if index.manifest.get("modality") != want:
        raise AvrepError(
            f"{index.path}: re-ranking an {'audio' if audio is not None else 'video'} query needs an index of "
            f"{want}s (this one holds {index.manifest.get('modality')!r} embeddings)",
            param="rerank",
        )
    if candidates < k:
        raise AvrepError(f"re-rank candidates ({candidates}) must be >= k ({k})", param="rerank")
    emb = embedder if embedder is not None else index_embedder(index.manifest, device, str(index.path))
    kind = index.manifest.get("kind") or "word"
    if audio is not None:
        wave = emb._audio(audio)
        T = len(wave) // SPF
        if T < 1:
            raise AvrepError("the audio query is shorter than one video frame", param="audio")
        q = emb.embed_audio(wave, kind=kind)
        qf = stream_features(emb.model, wave[: T * SPF], False, device=emb.device)
    else:
        if isinstance(video, tuple):  # (mouth, landmarks) as a feature store holds them
            mouth, lm = video
        else:
            from avrep.preprocess import process_file

            pv = process_file(video)  # the same decode -> landmarks -> mouth crops as the store was made with
            mouth, lm = pv.mouth, pv.landmarks
        q = emb.embed_video(mouth, kind=kind, landmarks=lm)
        qf = stream_features(emb.model, mouth, True, landmarks=lm, device=emb.device)
    _, ids = index.search_arrays(np.asarray(q, np.float32).reshape(1, -1), candidates, where)
    ids = ids[0][ids[0] >= 0]
    if not len(ids):
        return SearchResult(np.full((1, k), -np.inf, np.float32), np.full((1, k), -1, np.int64), index.metadata)
    cache = {} if cache is None else cache
    store, by_id = None, {}
    gallery = []
    for i in ids:
        cid = str(index.metadata["clip_id"].iloc[int(i)])
        if cid not in cache:
            if store is None:  # only when a candidate's frames are not cached: a store read is not free
                from avrep.data.store import FeatureStore

                store = FeatureStore(source_store(index))
                by_id = {str(c): j for j, c in enumerate(store.clips["clip_id"].astype(str))}
            if cid not in by_id:
                raise AvrepError(f"{index.path}: clip {cid!r} is not in its feature store {store.dir}", param="rerank")
            if want == "video":
                c = store.clip(by_id[cid], keys=("mouth", "landmarks"))
                f = stream_features(emb.model, c["mouth"], True, landmarks=c["landmarks"], device=emb.device)
            else:
                c = store.clip(by_id[cid], keys=("audio",))
                n = len(c["audio"]) // SPF
                f = stream_features(emb.model, c["audio"][: n * SPF], False, device=emb.device)
            cache[cid] = f
        gallery.append(cache[cid])
    # the score is symmetric in its two sides: audio frame t + o against video frame t either way round
    s = match_scores([qf], gallery, max_offset)[0]
    order = np.argsort(-s, kind="stable")[:k]
    scores = np.full((1, k), -np.inf, np.float32)
    out = np.full((1, k), -1, np.int64)
    scores[0, : len(order)], out[0, : len(order)] = s[order], ids[order]
    return SearchResult(scores, out, index.metadata)


__all__ = ["DEFAULT_CANDIDATES", "search_matched", "source_store"]
