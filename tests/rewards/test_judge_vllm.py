"""The judge (:mod:`rewards.judge`, :class:`~rewards.judge.OpenAIChatBackend`) against a real
``vllm serve`` of a tiny random-init text model (:mod:`vllm_server`): the text-only judge
(``send_image=False``), voting over n samples the server returns in one call, random answers
rejected cleanly (unparsable: raised or a flagged fallback), and answers forced well-formed with
vLLM's structured outputs (``extra_body={"structured_outputs": {"regex": ...}}``) parsed into the
forced verdict and score, also through the CRAFT-GUI hybrid reward.
"""

from __future__ import annotations

import re

import pytest
from vllm_server import VLLM_SKIP, serve_tiny_text_model  # no vllm import: the server is a subprocess

pytest.importorskip("vllm", reason=VLLM_SKIP, exc_type=ImportError)  # a broken install skips too

from guienv.actions import Action  # noqa: E402
from guienv.types import Episode, ImageRef, Step  # noqa: E402
from rewards.hybrid import HybridConfig, HybridItem, HybridReward  # noqa: E402
from rewards.judge import Judge, JudgeConfig, JudgeRequest, JudgeUnavailable, JudgeUnparsable  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
W, H = 400, 800


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_tiny_text_model(tmp_path_factory)


def config(server, **kw) -> JudgeConfig:
    base = dict(model=server.model, base_url=server.base_url, send_image=False, timeout_s=120.0, max_retries=1,
                backoff_s=0.1, max_concurrency=4, max_tokens=48, unparsable_retries=0)
    base.update(kw)
    return JudgeConfig(**base)


def request(sample_id: str = "ep1:0", action: Action | None = None) -> JudgeRequest:
    # text-only: the screen size is given, no screenshot is read
    return JudgeRequest(sample_id, image=None, action=action or Action.click(100, 300), goal="Order a large pizza",
                        instruction="Tap the order button", history=(Action.open_app("Pizza"),), width=W, height=H)


def forced(verdict: str, score: str) -> dict:
    return {"structured_outputs": {"regex": re.escape(f"<verdict>{verdict}</verdict><score>{score}</score>")}}


def test_forced_answers_parse_to_the_forced_verdict_and_score(server):
    for verdict, score in (("yes", "0.75"), ("no", "0.125")):
        with Judge(config(server, extra_body=forced(verdict, score))) as judge:
            res = judge.judge(request())
        assert res.outcome == "judged" and res.verdict is (verdict == "yes") and res.score == float(score), res.raw
        assert res.raw == (f"<verdict>{verdict}</verdict><score>{score}</score>",)


def test_votes_come_back_from_one_call_and_are_aggregated(server):
    # the regex leaves the verdict to the sampled model: n answers, each well-formed
    body = {"structured_outputs": {"regex": "<verdict>(yes|no)</verdict><score>0\\.[1-9]</score>"}}
    with Judge(config(server, extra_body=body, n_votes=3, vote_temperature=1.0)) as judge:
        res = judge.judge(request())
        assert judge.backend.counter.calls == 1  # vLLM honours "n"
    assert res.outcome == "judged" and len(res.raw) == 3 and len(res.votes) == 3
    assert res.score == pytest.approx(sum(res.votes) / 3)
    yes = sum(r.startswith("<verdict>yes") for r in res.raw)
    assert res.verdict is (yes >= 2)


def test_random_answers_are_rejected_cleanly(server):
    with Judge(config(server, max_tokens=8)) as judge, pytest.raises(JudgeUnparsable, match="unparsable"):
        judge.judge(request())
    with Judge(config(server, max_tokens=8, on_unparsable="fallback", unparsable_score=0.5)) as judge:
        res = judge.judge(request("ep1:1"))
    assert (res.outcome, res.score, res.flagged) == ("unparsable", 0.5, True) and res.error
    # a screenshot sent to a text model: refused (HTTP 400), not retried, raised or a flagged fallback
    png = ImageRef(data=_png())
    img_req = JudgeRequest("ep1:2", image=png, action=Action.click(1, 1), goal="g")
    with Judge(config(server, send_image=True)) as judge, pytest.raises(JudgeUnavailable, match="HTTP 400"):
        judge.judge(img_req)
    with Judge(config(server, send_image=True, on_error="fallback", fallback_score=0.0)) as judge:
        res = judge.judge(img_req)
    assert (res.outcome, res.flagged) == ("fallback", True) and "HTTP 400" in res.error


def test_hybrid_reward_asks_the_served_text_judge(server, tmp_path):
    img = ImageRef(data=_png())
    steps = (Step(img, W, H, Action.open_app("Pizza Hut"), instruction="Open the Pizza Hut app"),
             Step(img, W, H, Action.type_text("large pepperoni pizza"), instruction="Type large pepperoni pizza"))
    ep = Episode("ep7", "Order a large pepperoni pizza", steps)
    cfg = HybridConfig(judge=config(server, extra_body=forced("yes", "0.5"), cache_path=str(tmp_path / "j.sqlite")))
    items = [HybridItem.from_episode(ep, 1, Action.type_text("pepperoni pizza, large")),  # paraphrase: judge
             HybridItem.from_episode(ep, 1, Action.type_text("large pepperoni pizza"))]   # exact: rule
    with HybridReward(cfg) as hr:
        first = hr.score_batch(items)
        again = hr.score_batch(items)
    assert [r.source for r in first] == ["judge", "rule"]
    assert first[0].judge.score == 0.5 and first[0].judge.verdict is True and first[1].reward == 1.0
    assert again[0].judge.outcome == "cached"


def _png() -> bytes:
    import numpy as np

    from guienv.io import encode_png

    return encode_png(np.full((H, W, 3), 128, np.uint8))
