"""`avrep report RUN`: one self-contained HTML page (PNGs embedded as base64) about a trained run.

Sections: metrics vs goals (with the homophene ceiling) from every eval JSON in the run dir, training
curves (log.jsonl), confusion matrix, t-SNE of word embeddings coloured by word and by identity (and of
identity embeddings, the other half of the disentanglement), audio->video retrieval examples with
mouth-ROI thumbnails, and generated frame strips (PNGs found in the run dir or given with --images).
The data for t-SNE / retrieval is the store the eval JSON names (or `data=`); without one those
sections say so instead of failing.

The goals are not the library's: the caller passes a goals table (its `lipread` block is used): `avrep
report --goals FILE`, by default a source checkout's `benchmarks/goals.json` (the table the benchmarks record
with their results); without one, metrics are shown without goals. The library reads no table by path.
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from avrep.device import resolve_device
from avrep.errors import AvrepError
from avrep.report import plots

GOALS_SECTION = "lipread"  # the block of the table that judges a run's eval results
Goals = dict[str, float]


def load_goals(source: str | os.PathLike | dict[str, Any] | None = None) -> tuple[Goals, str | None]:
    """The goals for a run's eval results and where they came from -> (goals, source or None).

    `source`: a goals JSON file (either the whole table, whose `lipread` block is used, or that block
    alone), an already-loaded mapping, or None (no goals). The library reads no goals table of its own: the
    caller passes one (`avrep report` gives a checkout's benchmarks/goals.json unless --goals says otherwise). Keys: video_top1_over_ceiling, audio_top1, a2v_R@1, a2v_gallery, probe_margin;
    a missing key shows its metric without a goal."""
    from avrep.security import load_json_object

    if source is None:
        return {}, None
    if isinstance(source, dict):
        table, where = source, "given"
    else:
        table, where = load_json_object(source), str(source)
    block = table.get(GOALS_SECTION, table)
    if not isinstance(block, dict):
        raise AvrepError(f"{where}: goals block {GOALS_SECTION!r} must be a JSON object")
    goals: Goals = {}
    for k, v in block.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            goals[k] = float(v)
    return goals, where


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AvrepError(f"{p}: cannot read JSON ({e})") from None


def read_log(run: Path) -> list[dict[str, Any]]:
    p = run / "log.jsonl"
    if not p.exists():
        return []
    out = []
    for ln in p.read_text().splitlines():
        if ln.strip():
            try:
                out.append(json.loads(ln))
            except json.JSONDecodeError:
                continue  # a torn last line of a killed run
    return out


def eval_results(run: Path) -> dict[str, dict[str, Any]]:
    """Every JSON in the run dir that holds evaluation results (has a "lipread" block), by file name."""
    out = {}
    for p in sorted(run.glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(d, dict) and isinstance(d.get("lipread"), dict):
            out[p.name] = d
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return html.escape(str(v))


def _row(name: str, value: Any, goal: str | None = None, met: bool | None = None, note: str = "") -> dict[str, Any]:
    """One metrics-table row; `met` None = no goal to judge against."""
    return {"metric": name, "value": value, "goal": goal, "met": met, "note": note}


def _word_rows(lr: dict[str, Any], ceiling: float | None, goals: Goals) -> list[dict[str, Any]]:
    """Word-classification rows: video (against a share of the homophene ceiling), audio, fused, chance."""
    rows = []
    v = (lr.get("video") or {}).get("top1")
    a = (lr.get("audio") or {}).get("top1")
    f = (lr.get("fused") or {}).get("top1")
    k = goals.get("video_top1_over_ceiling")
    if ceiling and k is not None:
        g = k * ceiling
        rows.append(
            _row(
                "video word top-1",
                v,
                f">= {g:.3f} ({k:g} x ceiling {ceiling:.3f})",
                v is not None and v >= g,
                f"= {v / ceiling:.2f} x ceiling" if v is not None else "",
            )
        )
    elif ceiling:
        rows.append(_row("video word top-1", v, None, None, f"= {v / ceiling:.2f} x ceiling" if v is not None else ""))
    else:
        rows.append(
            _row(
                "video word top-1",
                v,
                f"{k:g} x homophene ceiling" if k is not None else None,
                None,
                "no ceiling known for this vocabulary",
            )
        )
    rows.append(_row("video word top-5", (lr.get("video") or {}).get("top5")))
    ga = goals.get("audio_top1")
    rows.append(
        _row(
            "audio word top-1",
            a,
            f">= {ga:g}" if ga is not None else None,
            (a is not None and a >= ga) if ga is not None else None,
        )
    )
    rows.append(_row("fused word top-1", f, ">= video", f is not None and v is not None and f >= v))
    if lr.get("chance_top1"):
        rows.append(_row("chance (top-1)", lr["chance_top1"]))
    return rows


def _retrieval_rows(rt: dict[str, Any], goals: Goals) -> list[dict[str, Any]]:
    """Audio->video retrieval rows (the R@1 goal is on the sync embedding when the run has one)."""
    rows = []
    g, gallery = goals.get("a2v_R@1"), int(goals.get("a2v_gallery", 0))  # 0: the goal names no gallery
    a2v, a2v_s = rt.get("a2v") or {}, rt.get("a2v_sync") or {}
    for name, r, judged in (
        ("audio->video R@1 (sync embedding)", a2v_s, True),
        ("audio->video R@1 (word embedding)", a2v, not a2v_s),
    ):
        if not r:
            continue
        n = r.get("N")
        note = f"at 1:{n}" + (f" (smaller gallery than the goal's 1:{gallery:,})" if n and n < gallery else "")
        if judged and g is not None:
            at = f" at 1:{gallery:,}" if gallery else ""
            rows.append(_row(name, r.get("R@1"), f">= {g:g}{at}", r.get("R@1", 0) >= g, note))
        elif judged:
            rows.append(_row(name, r.get("R@1"), None, None, note))
        else:
            rows.append(_row(name, r.get("R@1"), "", None, note + "; same-word clips are its neighbours by design"))
        rows.append(
            _row(name.replace("R@1", "R@5 / median rank"), f"{r.get('R@5', 0):.3f} / {r.get('median_rank', 0):g}")
        )
    v2a = rt.get("v2a") or {}
    if v2a:
        rows.append(_row("video->audio R@1", v2a.get("R@1")))
    return rows


def _probe_rows(pr: dict[str, Any], goals: Goals) -> list[dict[str, Any]]:
    """Disentanglement probes: near chance (within the goal's margin) where the features should not tell."""
    rows = []
    margin = goals.get("probe_margin")
    for key, want_low in (
        ("speaker_from_word_features", True),
        ("word_from_identity_features", True),
        ("word_from_word_features", False),
        ("speaker_from_identity_features", False),
    ):
        p = pr.get(key)
        if not p or p.get("accuracy") is None:
            continue
        acc, ch = p["accuracy"], p["chance"]
        name = f"probe: {key.replace('_', ' ')}"
        if want_low and margin is not None:
            rows.append(
                _row(name, acc, f"<= chance + {margin:.2f} ({ch + margin:.3f})", acc <= ch + margin, f"chance {ch:.3f}")
            )
        elif want_low:
            rows.append(_row(name, acc, None, None, f"chance {ch:.3f}"))
        else:
            rows.append(_row(name, acc, f"well above chance {ch:.3f}", acc >= min(1.0, 2 * ch), ""))
    return rows


def goal_rows(res: dict[str, Any], ceiling: float | None, goals: Goals | None = None) -> list[dict[str, Any]]:
    """(metric, value, goal, met) rows for one eval result; `goals` as `load_goals` returns them
    (None: no goals)."""
    goals = goals or {}
    lr = res.get("lipread", {})
    ceiling = lr.get("homophene_ceiling", ceiling)
    return (
        _word_rows(lr, ceiling, goals)
        + _retrieval_rows(res.get("retrieval", {}), goals)
        + _probe_rows(res.get("probes") or {}, goals)
    )


def _bar_goals(goals: Goals, ceiling: float | None) -> dict[str, float | None]:
    """Goal marks for the metrics bar chart, by metric name."""
    k = goals.get("video_top1_over_ceiling")
    return {
        "video word top-1": k * ceiling if ceiling and k is not None else None,
        "audio word top-1": goals.get("audio_top1"),
        "audio->video R@1 (sync embedding)": goals.get("a2v_R@1"),
    }


def _img(data: bytes, alt: str, width: str = "100%", mime: str = "png") -> str:
    """An <img> with the image embedded as base64 (the page stays one self-contained file)."""
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" style="max-width:{width}" src="data:image/{mime};base64,{b64}">'


def _not_available(reason: str | None) -> str:
    """The paragraph a section shows instead of its figure."""
    return f"<p class=muted>Not available ({html.escape(reason or '')}).</p>"


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["<table><tr><th>metric</th><th>value</th><th>goal</th><th></th><th>note</th></tr>"]
    for r in rows:
        met = r["met"]
        mark = "" if met is None else ('<span class="ok">met</span>' if met else '<span class="no">not met</span>')
        out.append(
            f"<tr><td>{html.escape(r['metric'])}</td><td class=num>{_fmt(r['value'])}</td>"
            f"<td>{_fmt(r['goal'])}</td><td>{mark}</td><td>{_fmt(r['note'] or None)}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _mouth_u8(m: Any) -> np.ndarray:
    m = np.asarray(m.numpy() if hasattr(m, "numpy") else m)
    if m.dtype != np.uint8:
        m = m.astype(np.float32)
        m = np.clip(m * 255.0 if m.max() <= 1.0 else m, 0, 255).astype(np.uint8)
    return m


def data_sections(
    run: Path,
    data: str,
    split: str,
    *,
    max_points: int = 800,
    n_queries: int = 6,
    k: int = 5,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Embeddings of `data`'s split -> t-SNE PNGs, retrieval-example PNG and logits for a confusion matrix."""
    import torch
    from torch.utils.data import Subset

    from avrep.data.sources import open_dataset
    from avrep.eval.extract import extract
    from avrep.loader import open_model

    dev = resolve_device(device)
    m = open_model(run, "davs", dev)
    model, words = m.model, m.words
    frames = model.cfg.frames  # the run's training clip length (typed config, defaults filled in)
    ds = open_dataset(data, split, frames, train=False)
    rng = np.random.default_rng(seed)
    idx = np.arange(len(ds))
    if len(idx) > max_points:
        idx = np.sort(rng.choice(len(idx), max_points, replace=False))
    sub = Subset(ds, idx.tolist())
    torch.manual_seed(seed)
    ex = extract(model, sub, 32, dev, progress=progress)
    y, spk = ex["word_id"], ex["speaker_id"]
    out: dict[str, Any] = {"n": int(len(y)), "data": str(data), "split": split, "words": words}
    out["logits_video"], out["word_id"] = ex["logits_video"], y
    if len(y) >= 5:
        xy = plots.tsne_2d(ex["emb_video"], seed)
        out["tsne_word"] = plots.tsne_panels(xy, y, spk, words, "word (video) embeddings")
        xyi = plots.tsne_2d(ex["emb_identity"], seed)
        out["tsne_identity"] = plots.tsne_panels(xyi, y, spk, words, "identity embeddings")
    # retrieval examples: audio queries against all video embeddings of the subset (the sync embeddings,
    # which rank the clip in sync first, when the model has them)
    qa, gv = (ex["sync_audio"], ex["sync_video"]) if "sync_audio" in ex else (ex["emb_audio"], ex["emb_video"])
    sim = qa @ gv.T
    q = np.sort(rng.choice(len(y), min(n_queries, len(y)), replace=False))
    rows = []
    for i in q:
        item = ds[int(idx[i])]
        mq = _mouth_u8(item["mouth"])
        sel = np.linspace(0, len(mq) - 1, 4).round().astype(int)
        order = np.argsort(-sim[i])[:k]
        hits = []
        for j in order:
            mj = _mouth_u8(ds[int(idx[j])]["mouth"])
            hits.append(
                {
                    "word": words[int(y[j])] if 0 <= y[j] < len(words) else "?",
                    "mouth": mj[len(mj) // 2],
                    "correct_clip": bool(j == i),
                    "correct_word": bool(y[j] == y[i]),
                    "score": float(sim[i, j]),
                }
            )
        rows.append(
            {"query_word": words[int(y[i])] if 0 <= y[i] < len(words) else "?", "query_mouth": mq[sel], "hits": hits}
        )
    if rows:
        out["retrieval_png"] = plots.retrieval_examples(rows)
        out["retrieval_rank1_own"] = float(np.mean([r["hits"][0]["correct_clip"] for r in rows]))
    return out


GEN_HINTS = ("strip", "gen", "sample", "fake")


def find_images(run: Path, extra: list[str | os.PathLike] | None, used: set[str]) -> list[Path]:
    """Generated frame strips: PNG/JPEG in the run dir (by name) and anything given explicitly."""
    found: list[Path] = []
    for p in sorted(run.rglob("*.png")):
        if p.name in used or "checkpoints" in p.parts:
            continue
        if any(h in str(p.relative_to(run)).lower() for h in GEN_HINTS):
            found.append(p)
    for e in extra or []:
        e = Path(e)
        if e.is_dir():
            found += sorted(x for x in e.rglob("*") if x.suffix.lower() in (".png", ".jpg", ".jpeg"))
        elif e.is_file():
            found.append(e)
        else:
            raise AvrepError(f"{e}: images path not found", param="images")
    return found


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1150px;color:#222;
padding:0 1em}
h1{margin-bottom:0.1em}h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:0.92em}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.no{color:#c62828;font-weight:600}.muted{color:#777}
figure{margin:0.8em 0}figcaption{color:#555;font-size:0.9em}
"""


def build_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    data: str | None = None,
    split: str | None = None,
    images: list[str | os.PathLike] | None = None,
    max_points: int = 800,
    device: str = "auto",
    seed: int = 0,
    progress: bool = False,
    goals: str | os.PathLike | dict[str, Any] | None = None,
) -> Path:
    """Write the HTML report for a run; returns its path (default RUN/report.html).

    `goals`: a goals JSON file or mapping (see `load_goals`); None: metrics without goals."""
    from avrep.utils import atomic_write_bytes

    run = Path(run_dir)
    if not (run / "config.json").exists():
        raise AvrepError(f"{run}: not an avrep training run (no config.json)")
    out = Path(out) if out else run / "report.html"
    config = _read_json(run / "config.json")
    vocab = _read_json(run / "vocab.json") if (run / "vocab.json").exists() else {}
    words = vocab.get("words", []) if isinstance(vocab, dict) else list(vocab)
    ceiling = vocab.get("ceiling") if isinstance(vocab, dict) else None
    log = read_log(run)
    evals = eval_results(run)
    primary_name = "eval_test.json" if "eval_test.json" in evals else (next(iter(evals)) if evals else None)
    primary = evals.get(primary_name) if primary_name else None
    data = data or (primary or {}).get("data")
    split = split or (primary or {}).get("split") or "test"
    title = f"avrep report: {run.name}"

    parts = [f"<h1>{html.escape(title)}</h1>", _summary(config, words, log)]
    parts += _metrics_section(evals, log, ceiling, *load_goals(goals))
    parts += _curves_section(log)
    ds_out, ds_err = _data_or_reason(
        run, data, split, max_points=max_points, device=device, seed=seed, progress=progress
    )
    used: set[str] = set()
    parts += _confusion_section(run, primary, primary_name, ds_out, ds_err, words, used)
    parts += _tsne_section(ds_out, ds_err, data, split)
    parts += _retrieval_section(ds_out, ds_err)
    parts += _strips_section(find_images(run, images, used))
    doc = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    atomic_write_bytes(out, doc.encode("utf-8"))
    return out


def _summary(config: dict[str, Any], words: list[str], log: list[dict[str, Any]]) -> str:
    """The line under the title: model config, vocabulary size, training data, epochs, seed, date."""
    mcfg = config.get("model", {})
    tcfg = config.get("train", {})
    return (
        f"<p class=muted>model config <b>{html.escape(str(mcfg.get('name', 'custom')))}</b>, "
        f"{len(words)} words, trained on <code>{html.escape(str(tcfg.get('data', '?')))}</code> for "
        f"{len(log)} epochs (seed {tcfg.get('seed', '?')}); made {time.strftime('%Y-%m-%d %H:%M')}."
        "</p>"
    )


def _metrics_section(
    evals: dict[str, dict[str, Any]],
    log: list[dict[str, Any]],
    ceiling: float | None,
    goals: Goals,
    goals_from: str | None,
) -> list[str]:
    """Metrics vs goals: a table and a bar chart per eval JSON (else the last validation record)."""

    parts = ["<h2>Metrics vs goals</h2>"]
    if goals_from:
        parts.append(f"<p class=muted>Goals from <code>{html.escape(goals_from)}</code>.</p>")
    else:
        parts.append(
            "<p class=muted>No goals table (benchmarks/goals.json of a source checkout, or "
            "<code>--goals FILE</code>): metrics are shown without goals.</p>"
        )
    if not evals:
        parts.append(
            "<p class=muted>No evaluation JSON in the run dir: run <code>avrep eval RUN --data STORE"
            "</code> first. Showing the last validation record of training instead.</p>"
        )
        if log:
            last = log[-1]
            parts.append(_table([_row(k, v) for k, v in last.items() if k.startswith("val_")]))
    for name, res in evals.items():
        ceil = (res.get("lipread") or {}).get("homophene_ceiling", ceiling)
        parts.append(
            f"<h3>{html.escape(name)}: <code>{html.escape(str(res.get('data', '?')))}</code>, split "
            f"<b>{html.escape(str(res.get('split', '?')))}</b>, n = {(res.get('lipread') or {}).get('n', '?')}"
            + (f", homophene ceiling {ceil:.3f}" if ceil else "")
            + "</h3>"
        )
        rows = goal_rows(res, ceil, goals)
        parts.append(_table(rows))
        vals = {
            r["metric"]: float(r["value"])
            for r in rows
            if isinstance(r["value"], float)
            and r["metric"]
            in (
                "video word top-1",
                "audio word top-1",
                "fused word top-1",
                "audio->video R@1 (sync embedding)",
                "audio->video R@1 (word embedding)",
            )
        }
        if ceil:
            vals["homophene ceiling"] = float(ceil)
        if vals:
            png = plots.bars(vals, _bar_goals(goals, ceil), name)
            parts.append(f"<figure>{_img(png, 'metrics vs goals ' + name, '700px')}</figure>")
    return parts


def _curves_section(log: list[dict[str, Any]]) -> list[str]:
    """Training curves from log.jsonl."""

    parts = ["<h2>Training curves</h2>"]
    if log:
        parts.append(
            f"<figure>{_img(plots.training_curves(log), 'training curves')}<figcaption>losses per epoch "
            "(log scale) and train/validation accuracies from log.jsonl</figcaption></figure>"
        )
    else:
        parts.append("<p class=muted>No log.jsonl in the run dir.</p>")
    return parts


def _data_or_reason(run: Path, data: str | None, split: str, **kw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """`data_sections` of the store, or None and the reason the data-based sections are not available."""
    if not data:
        return None, "no data: the run has no eval JSON naming a store; pass --data STORE"
    try:
        return data_sections(run, data, split, **kw), None
    except AvrepError as e:
        return None, str(e)


def _confusion_section(
    run: Path,
    primary: dict[str, Any] | None,
    primary_name: str | None,
    ds_out: dict[str, Any] | None,
    ds_err: str | None,
    words: list[str],
    used: set[str],
) -> list[str]:
    """Video confusion matrix: the eval's own PNG (added to `used`), else one made from the store's logits."""

    parts = ["<h2>Confusion matrix (video only)</h2>"]
    cpng = (primary or {}).get("confusion_png")
    if cpng and (run / cpng).exists():
        used.add(cpng)
        parts.append(
            f"<figure>{_img((run / cpng).read_bytes(), 'confusion matrix')}<figcaption>from "
            f"{html.escape(primary_name or '')}; rows = true word, row-normalised</figcaption></figure>"
        )
    elif ds_out is not None:
        from avrep.eval.lipread import confusion

        y = ds_out["word_id"]
        keep = (y >= 0) & (y < len(words))
        cm = confusion(ds_out["logits_video"][keep].argmax(1), y[keep], len(words))
        parts.append(f"<figure>{_img(plots.confusion(cm, words, 'video confusion'), 'confusion matrix')}</figure>")
    else:
        parts.append(_not_available(ds_err))
    return parts


def _tsne_section(ds_out: dict[str, Any] | None, ds_err: str | None, data: str | None, split: str) -> list[str]:
    """t-SNE of word and identity embeddings."""
    parts = ["<h2>Disentanglement made visible: t-SNE</h2>"]
    if ds_out and "tsne_word" in ds_out:
        parts.append(
            f"<p>{ds_out['n']} clips of <code>{html.escape(str(data))}</code> ({html.escape(split)}). "
            "Word embeddings should cluster by word and mix identities; identity embeddings the "
            "reverse.</p>"
        )
        parts.append(f"<figure>{_img(ds_out['tsne_word'], 't-SNE of word embeddings')}</figure>")
        parts.append(f"<figure>{_img(ds_out['tsne_identity'], 't-SNE of identity embeddings')}</figure>")
    else:
        parts.append(_not_available(ds_err or "too few clips"))
    return parts


def _retrieval_section(ds_out: dict[str, Any] | None, ds_err: str | None) -> list[str]:
    """Audio->video retrieval examples with mouth-ROI thumbnails."""
    parts = ["<h2>Retrieval examples</h2>"]
    if ds_out and "retrieval_png" in ds_out:
        parts.append(
            f"<figure>{_img(ds_out['retrieval_png'], 'retrieval examples')}<figcaption>audio queries "
            f"against the video sync embeddings of {ds_out['n']} clips (the clip in sync should come "
            "first, same-word clips next); mouth ROIs (88x88 centre crop)."
            "</figcaption></figure>"
        )
    else:
        parts.append(_not_available(ds_err))
    return parts


def _strips_section(imgs: list[Path]) -> list[str]:
    """Generated frame strips, each embedded with its path as the caption."""
    parts = ["<h2>Generated frame strips</h2>"]
    for p in imgs:
        mime = "jpeg" if p.suffix.lower() in (".jpg", ".jpeg") else "png"
        parts.append(
            f"<figure>{_img(p.read_bytes(), p.name, mime=mime)}<figcaption>{html.escape(str(p))}</figcaption></figure>"
        )
    if not imgs:
        parts.append(
            "<p class=muted>None found (generator strips are picked up from the run dir, or pass "
            "<code>--images DIR</code>).</p>"
        )
    return parts


__all__ = ["build_report", "eval_results", "goal_rows", "load_goals", "read_log"]
