"""avrep serve: the JSON API against a live uvicorn on a free local port, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_sync import synth_run  # noqa: F401  (session fixture: tiny DAVS trained for real)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
CHROMEDRIVER = shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving an app in a background thread on 127.0.0.1:<free port>."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        t0 = time.time()
        while not self.server.started:
            assert time.time() - t0 < 30, "uvicorn did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def served(synth_run, tmp_path_factory):  # noqa: F811
    """Video + audio sync indexes of the tiny synthetic corpus (all splits), served by one live uvicorn."""
    from avrep.embed_job import embed_store
    from avrep.index import build_index
    from avrep.serve import Service, create_app

    work = tmp_path_factory.mktemp("serve")
    for mod in ("video", "audio"):
        embed_store(
            synth_run["store"], synth_run["run"], mod, work / f"emb_{mod}", device="cpu", progress=False, kind="sync"
        )
    build_index(work / "emb_video", work / "video", tune_queries=work / "emb_audio")
    build_index(work / "emb_audio", work / "audio", tune_queries=work / "emb_video")
    service = Service([work / "video", work / "audio"], device="cpu", max_upload_bytes=2 << 20, max_upload_seconds=5)
    srv = LiveServer(create_app(service))
    meta = pd.read_parquet(next((work / "emb_video").glob("meta_*.parquet")))
    yield {"url": srv.url, "work": work, "meta": meta, "service": service, "run": synth_run}
    srv.stop()


LRC_STORE = Path(os.environ.get("AVREP_LRC_STORE", "/work/stores/lrc_ar"))  # built by benchmarks/pretrained.py


@pytest.fixture(scope="module")
def lrc_served(shared_data, tmp_path_factory):
    """A video sync index over 120 clips of the held-out lrc_ar anchors (the store's test split), embedded with the
    shipped model, served by a live uvicorn; skipped where the lrc_ar feature store is absent."""
    if not (LRC_STORE / "clips.parquet").exists():
        pytest.skip(f"{LRC_STORE}: no lrc_ar feature store (benchmarks/pretrained.py builds it)")
    import torch

    from avrep.embed import Embedder
    from avrep.index import build_index
    from avrep.models.pretrained import resolve_checkpoint
    from avrep.serve import Service, create_app

    torch.set_num_threads(2)
    from avrep.data.store import FeatureStore

    clips = FeatureStore(LRC_STORE).clips
    test = clips[clips["split"] == "test"].reset_index(drop=True)  # positions as the split's dataset numbers them
    rows = np.arange(0, len(test), max(1, len(test) // 120))[:120]
    run = resolve_checkpoint(None)
    emb = Embedder.from_checkpoint(run, device="cpu")
    work = tmp_path_factory.mktemp("lrc")
    for mod in ("video", "audio"):
        d = work / f"emb_{mod}"
        d.mkdir()
        vecs = np.concatenate([v for _, v in emb.iter_store(LRC_STORE, mod, rows=rows, split="test", kind="sync")])
        np.save(d / "emb_00000.npy", vecs.astype(np.float32))
        meta = test.loc[rows, ["clip_id", "path", "word", "transcript", "speaker", "split"]].reset_index(drop=True)
        meta.to_parquet(d / "meta_00000.parquet", index=False)
        man = {"modality": mod, "kind": "sync", "dim": int(vecs.shape[1]), "metric": "ip", "normalized": True}
        man.update({"checkpoint": str(run), "checkpoint_sha256": emb.sha256, "model": emb.cfg.name})
        (d / "manifest.json").write_text(json.dumps(man))
    build_index(work / "emb_video", work / "lrc_ar_video", tune_queries=work / "emb_audio")
    build_index(work / "emb_audio", work / "lrc_ar_audio", tune_queries=work / "emb_video")
    srv = LiveServer(create_app(Service([work / "lrc_ar_video", work / "lrc_ar_audio"], device="cpu")))
    yield {"url": srv.url, "work": work, "meta": pd.read_parquet(work / "emb_video" / "meta_00000.parquet")}
    srv.stop()


def _post(url: str, files=None, data=None):
    import httpx

    return httpx.post(url + "/search", files=files, data=data or {}, timeout=60)


def _test_clips(served, n: int) -> pd.DataFrame:
    m = served["meta"]
    return m[m["split"] == "test"].iloc[:: max(1, (m["split"] == "test").sum() // n)].head(n)


def test_upload_audio_matches_the_python_api(served):
    """An uploaded audio file: results with metadata, a media URL and timings, exactly the Python API's."""
    from avrep.index import Index

    ix = Index.open(served["work"] / "video")
    row = _test_clips(served, 1).iloc[0]
    wav = served["work"] / f"{row['clip_id']}.wav"
    _extract_wav(row["path"], wav)
    with open(wav, "rb") as f:
        r = _post(served["url"], files={"file": (wav.name, f, "audio/wav")}, data={"k": "10", "index": "video"})
    assert r.status_code == 200, r.text
    body = r.json()
    res = body["results"]
    assert len(res) == 10 and body["timings"]["embed_ms"] > 0 and body["timings"]["search_ms"] >= 0
    assert {"score", "clip_id", "word", "speaker", "split", "media_url"} <= set(res[0]) and "path" not in res[0]
    q = body["query"]
    assert q["type"] == "file" and q["filename"] == wav.name and q["use"] == "audio" and 1.0 < q["duration_s"] < 1.3
    want = ix.search(ix.embed_query(audio=wav, device="cpu"), 10).records()[0]
    assert [h["clip_id"] for h in res] == [h["clip_id"] for h in want]
    np.testing.assert_allclose([h["score"] for h in res], [h["score"] for h in want], rtol=1e-5, atol=1e-5)


def test_upload_held_out_audio_finds_its_own_video(lrc_served):
    """The shipped model over clips of the 5 lrc_ar anchors it never saw: a clip's file uploaded and searched by
    its audio finds that clip's video in the top 10 of 120 for most clips (chance: 10/120 per clip)."""
    import httpx

    hits = []
    for _, row in lrc_served["meta"].iloc[::15].iterrows():  # 8 clips across the anchors
        with open(row["path"], "rb") as f:
            r = _post(lrc_served["url"], files={"file": ("q.mp4", f, "video/mp4")}, data={"k": "10", "use": "audio"})
        assert r.status_code == 200, r.text
        ids = [h["clip_id"] for h in r.json()["results"]]
        hits.append(row["clip_id"] in ids)
        m = httpx.get(lrc_served["url"] + r.json()["results"][0]["media_url"])
        assert m.status_code == 200 and m.headers["content-type"] == "video/mp4"
    print("own video in the top 10 of", len(lrc_served["meta"]), ":", sum(hits), "of", len(hits))
    assert sum(hits) >= len(hits) // 2, hits


def test_filters_clip_query_and_embedding_query(served):
    row = _test_clips(served, 1).iloc[0]
    r = _post(served["url"], data={"clip_id": row["clip_id"], "use": "audio", "k": "5", "where": '{"split": "test"}'})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res and all(h["split"] == "test" for h in res)
    v = np.load(next((served["work"] / "emb_audio").glob("emb_*.npy")))[0]
    r = _post(served["url"], data={"embedding": json.dumps(v.tolist()), "k": "3", "index": "video"})
    assert r.status_code == 200 and len(r.json()["results"]) == 3 and r.json()["query"]["type"] == "embedding"
    r = _post(served["url"], data={"clip_id": row["clip_id"], "use": "video", "k": "3", "index": "audio"})
    assert r.status_code == 200, r.text  # video -> audio: the lips of an indexed clip search the audio index


def test_bad_requests_are_json_4xx_and_the_server_keeps_serving(served, tmp_path):
    import httpx

    url = served["url"]
    cases = {
        "not media": ({"file": ("x.wav", b"this is not a media file" * 10, "audio/wav")}, {}, 400),
        "empty": ({"file": ("e.wav", b"", "audio/wav")}, {}, 400),
        "wrong field": ({"upload": ("x.wav", b"RIFF", "audio/wav")}, {}, 422),
        "bad k": (None, {"clip_id": served["meta"].clip_id[0], "k": "0"}, 422),
        "bad where": (None, {"clip_id": served["meta"].clip_id[0], "where": "split=test"}, 422),
        "unknown column": (None, {"clip_id": served["meta"].clip_id[0], "where": '{"nope": "x"}'}, 422),
        "bad embedding": (None, {"embedding": "[1, 2]"}, 422),
        "unknown index": (None, {"clip_id": "x", "index": "../../etc"}, 404),
    }
    long_wav = tmp_path / "long.wav"  # 8 s of tone: over the fixture's 5 s cap
    _tone_wav(long_wav, 8.0)
    cases["too long"] = ({"file": ("long.wav", long_wav.read_bytes(), "audio/wav")}, {}, 413)
    cases["too big"] = ({"file": ("big.wav", b"\0" * (3 << 20), "audio/wav")}, {}, 413)
    for name, (files, data, status) in cases.items():
        r = _post(url, files=files, data=data)
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        assert set(body) == {"error"} and "\n" not in body["error"] and body["error"], (name, body)
        assert "Traceback" not in body["error"]
    assert httpx.get(url + "/healthz").json()["status"] == "ok"


def test_media_range_requests_and_no_traversal(served):
    import httpx

    url = served["url"]
    cid = served["meta"].clip_id[0]
    full = httpx.get(f"{url}/media/{cid}")
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.content == Path(served["meta"].path[0]).read_bytes()
    part = httpx.get(f"{url}/media/{cid}", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == full.content[10:100]
    assert part.headers["content-range"].startswith("bytes 10-99/")
    for bad in ("not_a_clip", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "%2E%2E", "manifest.json"):
        r = httpx.get(f"{url}/media/{bad}")
        assert r.status_code == 404 and set(r.json()) == {"error"}, (bad, r.text)
    r = httpx.get(f"{url}/media/../../etc/passwd")
    assert r.status_code == 404
    ixs = httpx.get(url + "/indexes").json()
    assert [i["name"] for i in ixs] == ["video", "audio"] and ixs[0]["modality"] == "video"
    assert ixs[0]["n"] == len(served["meta"]) and ixs[0]["kind"] == "sync" and ixs[0]["corpus_root"]
    assert "split" in ixs[0]["filters"]
    assert httpx.get(url + "/openapi.json").json()["paths"]["/search"]["post"]
    page = httpx.get(url + "/").text
    assert "MediaRecorder" in page and "http://" not in page and "https://" not in page  # no CDN


def test_microphone_recording_upload(served, tmp_path):
    """What the page's recorder sends (webm/opus, 48 kHz) is decoded and searched; asking for its video is a 422."""
    import av

    f = tmp_path / "microphone.webm"
    with av.open(str(f), "w", format="webm") as out:
        s = out.add_stream("libopus", rate=48000)
        s.layout = "mono"
        x = (0.2 * np.sin(2 * np.pi * 220 * np.arange(96000) / 48000)).astype(np.float32)[None]
        for i in range(0, x.shape[1], 960):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + 960]), format="fltp", layout="mono")
            fr.sample_rate = 48000
            for p in s.encode(fr):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    r = _post(served["url"], files={"file": (f.name, f.read_bytes(), "audio/webm")}, data={"k": "3"})
    assert r.status_code == 200 and len(r.json()["results"]) == 3, r.text
    r = _post(served["url"], files={"file": (f.name, f.read_bytes(), "audio/webm")}, data={"use": "video"})
    assert r.status_code == 422 and "no video stream" in r.json()["error"]


def test_refuses_a_checkpoint_the_index_was_not_built_with(served, tmp_path):
    from avrep.errors import AvrepError
    from avrep.models.pretrained import resolve_checkpoint
    from avrep.serve import Service

    with pytest.raises(AvrepError, match="hash does not match"):
        Service([served["work"] / "video"], checkpoint=resolve_checkpoint(None), device="cpu")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="chromium/chromium-driver not installed")
def test_page_in_headless_chromium(served, request, tmp_path):
    """The page in a real browser: upload a clip, the grid fills, a result <video> loads its media
    (readyState >= 2), "search with this clip" runs; a screenshot is saved (to $AVREP_SERVE_SCREENSHOT if set:
    `AVREP_SERVE_SCREENSHOT=docs/serve.png pytest tests/test_serve.py -k chromium` makes the README's)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        opts.add_argument(a)
    opts.add_argument("--autoplay-policy=no-user-gesture-required")
    # a fake microphone (Chromium's test tone) that needs no permission prompt: the record button is tested too
    opts.add_argument("--use-fake-device-for-media-stream")
    opts.add_argument("--use-fake-ui-for-media-stream")
    try:
        driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=opts)
    except Exception as e:  # a browser that cannot start here (sandbox, missing libraries): skip, not fail
        pytest.skip(f"headless chromium did not start: {str(e).splitlines()[0][:200]}")
    try:  # real results (the README's screenshot) where the lrc_ar store is here, else the synthetic corpus
        target = request.getfixturevalue("lrc_served")
    except pytest.skip.Exception:
        target = served
    meta = target["meta"]
    url, query = target["url"], Path(meta[meta["split"] == "test"].iloc[0]["path"]).resolve()
    try:
        driver.set_page_load_timeout(30)
        driver.get(url + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#index option"))
        driver.find_element(By.ID, "file").send_keys(str(query))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 10)
        assert "query time" in driver.find_element(By.ID, "timing").text
        wait.until(
            lambda d: (
                d.execute_script("const v = document.querySelector('#results video'); return v && v.readyState") >= 2
            )
        )
        words = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .word")]
        assert all(words), words
        wait.until(
            lambda d: d.execute_script(
                "return [...document.querySelectorAll('#results video')].slice(0, 5).every(v => v.readyState >= 2)"
            )
        )
        shot = Path(os.environ.get("AVREP_SERVE_SCREENSHOT", tmp_path / "serve.png"))
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        # "search with its lips" on the first result: a new grid for that clip
        first = driver.find_element(By.CSS_SELECTOR, "#results .result .actions button:nth-child(2)")
        first.click()
        wait.until(lambda d: "results for clip " in d.find_element(By.ID, "status").text)  # set as the grid renders
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 10)
        wait.until(
            lambda d: d.execute_script(
                "return [...document.querySelectorAll('#results video')].slice(0, 5).every(v => v.readyState >= 2)"
            )
        )
        # record from the (fake) microphone: MediaRecorder's webm/opus goes up as a file and is searched
        rec = driver.find_element(By.ID, "record")
        rec.click()
        wait.until(lambda d: d.find_element(By.ID, "record").get_attribute("aria-pressed") == "true")
        time.sleep(1.5)
        rec.click()
        wait.until(lambda d: "results for microphone recording" in d.find_element(By.ID, "status").text)
        assert driver.find_elements(By.CSS_SELECTOR, "#query-preview audio")
    finally:
        driver.quit()


def _extract_wav(src: str, dst: Path) -> None:
    """The audio track of a clip as a 16-bit WAV (what a user would upload)."""
    from avrep.io.encode import write_wav
    from avrep.io.media import read_audio

    write_wav(dst, read_audio(src))


def _tone_wav(dst: Path, seconds: float) -> None:
    from avrep.io.encode import write_wav

    t = np.arange(int(16000 * seconds)) / 16000
    write_wav(dst, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
