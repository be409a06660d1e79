"""Shared test fixtures: the real files in ``../shared/data`` (see its README for provenance)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vllm_server import VLLM_INSTALL  # tests/ is on sys.path (rootdir conftest)

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    env = os.environ.get("GUIENV_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (CI has it); set GUIENV_SHARED_DATA elsewhere."""
    path = _shared_data()
    if path is None:
        pytest.skip("shared/data not found beside the checkout (set GUIENV_SHARED_DATA)")
    return path


# -- small benchmark files in the real formats (written by the public writers) ------------------
def _png(w: int, h: int, seed: int) -> bytes:
    import numpy as np

    from guienv.io import encode_png

    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 240, np.uint8)
    img[: h // 3] = rng.integers(0, 255, 3)
    return encode_png(img)


@pytest.fixture
def screenspot_dir(tmp_path):
    """A ScreenSpot-v2 directory: 6 samples, web 1280x720 / mobile 390x844, text and icon targets."""
    from guienv.types import GroundingSample, ImageRef
    from tasks.screenspot import write_screenspot

    samples = []
    for i in range(6):
        w, h = (390, 844) if i % 2 else (1280, 720)
        x, y = 40 + 10 * i, 60 + 5 * i
        samples.append(GroundingSample(
            id=str(i), image=ImageRef(data=_png(w, h, i), where=f"sample {i}"), instruction=f"open item {i}",
            box=(x, y, x + 30.0, y + 20.0), width=w, height=h, data_type="icon" if i % 3 else "text",
            platform="mobile" if i % 2 else "web",
        ))
    return write_screenspot(samples, tmp_path / "ss", version="v2")


@pytest.fixture
def androidcontrol_file(tmp_path):
    """An AndroidControl release TFRecord: 3 episodes of click / scroll / type steps."""
    from guienv.actions import Action
    from guienv.types import Episode, ImageRef, Step, UIElement
    from tasks.androidcontrol import write_androidcontrol_tfrecord

    w, h = 360, 640
    episodes = []
    for e in range(3):
        button = UIElement(box=(100.0, 200.0, 260.0, 260.0), text="OK", clickable=True)
        steps = (
            Step(image=ImageRef(data=_png(w, h, e), where=""), width=w, height=h, action=Action.click(180, 230),
                 instruction="tap OK", elements=(button,)),
            Step(image=ImageRef(data=_png(w, h, e + 10), where=""), width=w, height=h, action=Action.scroll("down"),
                 instruction="scroll down"),
            Step(image=ImageRef(data=_png(w, h, e + 20), where=""), width=w, height=h,
                 action=Action.type_text("hello world"), instruction="type hello world"),
        )
        episodes.append(Episode(id=str(100 + e), goal=f"goal {e}", steps=steps,
                                extra={"final_image": ImageRef(data=_png(w, h, e + 30), where="")}))
    path = tmp_path / "android_control-00000-of-00001"
    write_androidcontrol_tfrecord(episodes, path)
    return path


# -- vLLM: CI must run the vllm-marked tests, elsewhere they skip ------------------------------------
def _vllm_importable() -> tuple[bool, str]:
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001  a broken install (ImportError, OSError of a native library) counts as missing
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.vllm`` tests skip when vllm is not importable; with ``GUIENV_REQUIRE_VLLM=1``
    (CI) the session fails instead, so CI never skips them silently."""
    marked = [item for item in items if item.get_closest_marker("vllm") is not None]
    if not marked and os.environ.get("GUIENV_REQUIRE_VLLM") != "1":
        return
    ok, why = _vllm_importable()
    if ok:
        return
    if os.environ.get("GUIENV_REQUIRE_VLLM") == "1":
        raise pytest.UsageError(f"GUIENV_REQUIRE_VLLM=1 but vllm is not importable ({why}); install it: {VLLM_INSTALL}")
    skip = pytest.mark.skip(reason=f"needs vLLM, not importable here ({why}); install: {VLLM_INSTALL}")
    for item in marked:
        item.add_marker(skip)
