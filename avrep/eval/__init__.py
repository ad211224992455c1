"""Evaluation: lip reading (video/audio/fused), audio-video retrieval, disentanglement probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avrep.device import resolve_device


def evaluate_run(
    run_dir: str | Path,
    data: str,
    split: str = "test",
    out_json: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 32,
    workers: int = 0,
    probes: bool = True,
    progress: bool = True,
    dataset=None,
) -> dict[str, Any]:
    """Evaluate a trained run on `data`'s `split`; writes JSON (+ confusion PNG beside it) if out_json."""
    import numpy as np

    from avrep.data.sources import data_meta, open_dataset
    from avrep.errors import MissingExtraError
    from avrep.eval.extract import extract
    from avrep.eval.lipread import confusion, lipread_metrics, log_softmax, plot_confusion
    from avrep.eval.probes import disentanglement_probes
    from avrep.eval.retrieval import av_retrieval
    from avrep.loader import open_model
    from avrep.utils import atomic_write_json

    dev = resolve_device(device)
    m = open_model(run_dir, "davs", dev)
    model, words = m.model, m.words
    frames = model.cfg.frames  # the run's training clip length (typed config, defaults filled in)
    ds = dataset if dataset is not None else open_dataset(data, split, frames, train=False)
    ceiling = getattr(ds, "ceiling", None)
    if ceiling is None and dataset is None:
        try:
            ceiling = data_meta(data, split).ceiling
        except Exception:
            ceiling = None
    ex = extract(model, ds, batch_size, dev, workers=workers, amp=dev.type == "cuda", progress=progress)
    y = ex["word_id"]
    if len(y) and y.max() >= len(words):
        from avrep.errors import AvrepError

        raise AvrepError(f"{data}: word ids up to {y.max()} but the run's vocabulary has {len(words)} words")
    res: dict[str, Any] = {"run": str(run_dir), "data": str(data), "split": split}
    res["lipread"] = lipread_metrics(ex["logits_video"], ex["logits_audio"], y, words, ceiling)
    res["retrieval"] = av_retrieval(ex["emb_audio"], ex["emb_video"], ex.get("sync_audio"), ex.get("sync_video"))
    if probes:
        res["probes"] = disentanglement_probes(ex["emb_video"], ex["emb_identity"], y, ex["speaker_id"])
    if out_json is not None:
        out_json = Path(out_json)
        png = out_json.with_name(out_json.stem + "_confusion_video.png")
        try:
            plot_confusion(confusion(ex["logits_video"].argmax(1), y, len(words)), words, png)
            res["confusion_png"] = png.name
        except MissingExtraError as e:  # matplotlib is the [report] extra: the metrics do not need it
            res["confusion_png"] = None
            res["confusion_png_skipped"] = str(e)
        fused = (log_softmax(ex["logits_video"]) + log_softmax(ex["logits_audio"])).argmax(1)
        res["confusion_fused"] = np.asarray(confusion(fused, y, len(words))).tolist() if len(words) <= 100 else None
        atomic_write_json(out_json, res)
    return res
