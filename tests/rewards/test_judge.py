"""Judge-model reward and hybrid reward (CRAFT-GUI, arXiv 2508.11360).

The judge talks to a real HTTP server started here on 127.0.0.1 that speaks the OpenAI
``/v1/chat/completions`` route, decodes the screenshot it receives and looks at its pixels.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from chat_server import ChatServer, reply
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from guienv.actions import Action, scroll_to_swipe
from guienv.draw import DrawStyle, draw_action
from guienv.errors import DataError
from guienv.frames import Frame, Screen
from guienv.types import Episode, ImageRef, Step
from rewards.hybrid import HybridConfig, HybridItem, HybridReward, text_clearly_wrong
from rewards.judge import (
    Judge,
    JudgeConfig,
    JudgeError,
    JudgeRequest,
    JudgeUnavailable,
    JudgeUnparsable,
    TransformersBackend,
    aggregate_votes,
    describe_action,
    parse_verdict,
)
from rewards.judge_cache import JudgeCache

REPO = Path(__file__).resolve().parents[2]
W, H = 400, 800
GREY = (128, 128, 128)
RED = (255, 0, 0)


# -- a real OpenAI-compatible server ---------------------------------------------------------------
def decode_request_image(body: dict) -> Image.Image:
    parts = body["messages"][-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix):], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return img.convert("RGB")


def request_text(body: dict) -> str:
    parts = body["messages"][-1]["content"]
    return "\n".join(p["text"] for p in parts if p["type"] == "text")


@pytest.fixture
def serve():
    servers = []

    def start(behaviour):
        s = ChatServer(behaviour)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(base_url: str, **kw) -> JudgeConfig:
    base = dict(model="judge-test", base_url=base_url, timeout_s=2.0, max_retries=2, backoff_s=0.01,
                backoff_max_s=0.05, max_concurrency=4)
    base.update(kw)
    return JudgeConfig(**base)


@pytest.fixture
def screen_png(tmp_path) -> Path:
    path = tmp_path / "screen.png"
    Image.new("RGB", (W, H), GREY).save(path)
    return path


def request(screen_png: Path, action: Action, sample_id: str = "ep1:0", **kw) -> JudgeRequest:
    base = dict(sample_id=sample_id, image=ImageRef(path=screen_png), action=action,
                goal="Order a large pizza", instruction="Tap the order button", history=())
    base.update(kw)
    return JudgeRequest(**base)


YES = lambda body, n, headers: reply("<verdict>yes</verdict><score>0.9</score>")  # noqa: E731


# -- drawing ---------------------------------------------------------------------------------------
def grey_image(w: int = W, h: int = H) -> np.ndarray:
    return np.full((h, w, 3), GREY, np.uint8)


def test_tap_marker_lands_on_the_converted_point():
    # normalized, grid1000 and resized frames all land on the same pixel
    for action in (Action.click(0.25, 0.375, frame=Frame.NORMALIZED),
                   Action.click(250, 375, frame=Frame.GRID1000),
                   Action.long_press(100, 300)):
        img = draw_action(grey_image(), action)
        assert img.getpixel((100, 300)) == RED
        assert img.getpixel((300, 700)) == GREY
    screen = Screen(W, H)
    rw, rh = screen.resized
    img = draw_action(grey_image(), Action.click(100 * rw / W, 300 * rh / H, frame=Frame.RESIZED), screen)
    assert img.getpixel((100, 300)) == RED


def test_marker_on_real_screenshot(shared_data):
    meta = json.loads((shared_data / "screens" / "gui-g1_1033.json").read_text())[0]
    img = np.asarray(Image.open(shared_data / "screens" / meta["img_filename"]).convert("RGB"))
    x1, y1, x2, y2 = meta["bbox_xyxy"]
    cx, cy = round((x1 + x2) / 2), round((y1 + y2) / 2)
    out = draw_action(img, Action.click(cx, cy))
    assert out.size == (meta["img_size"][0], meta["img_size"][1])
    assert out.getpixel((cx, cy)) == RED
    far = (100, 100)
    assert out.getpixel(far) == tuple(img[far[1], far[0]])


def test_scroll_arrow_follows_the_finger_not_the_content():
    # AndroidControl "scroll down": content moves down, the finger moves up.
    screen = Screen(W, H)
    swipe = scroll_to_swipe(Action.scroll("down"), screen)
    (sx, sy), (ex, ey) = swipe.point, swipe.end
    assert ey < sy
    img = draw_action(grey_image(), Action.scroll("down"))
    assert img.getpixel((round(sx), round((sy + ey) / 2))) == RED  # on the shaft
    head = img.getpixel((round(ex) + 4, round(ey) + 14))
    tail = img.getpixel((round(sx) + 4, round(sy) - 14))
    assert head == RED and tail != RED  # the head is at the finger's end point (top)
    # an explicit finger swipe downward puts the head at the bottom
    img2 = draw_action(grey_image(), Action.swipe((200, 200), (200, 600)))
    assert img2.getpixel((204, 586)) == RED and img2.getpixel((204, 214)) != RED


def test_box_outline_and_captions():
    img = draw_action(grey_image(), Action.box_answer((50, 400, 250, 500)))
    assert img.getpixel((150, 400)) == RED and img.getpixel((150, 450)) == GREY
    style = DrawStyle()
    cap = draw_action(grey_image(), Action.type_text("large pizza"), style=style)
    band = np.asarray(cap)[:20]
    assert (band == 0).all(axis=2).any() and (band == 255).all(axis=2).any()  # black band, white text
    assert cap.getpixel((W // 2, H - 1)) == GREY
    # a marker near the top moves the caption to the bottom
    low = draw_action(grey_image(), Action.type_text("x", point=(200, 10)))
    assert low.getpixel((1, H - 1)) == style.caption_bg and low.getpixel((200, 10)) == RED


def test_drawing_is_deterministic_and_survives_hostile_text():
    hostile = "\x00\x1b[31m<|image_pad|></verdict>" + "日本語 " * 500 + "\U0001F600"
    actions = [Action.type_text(hostile), Action.open_app(hostile), Action.finish("complete", hostile),
               Action.swipe((5, 5), (5, 5)), Action.simple("navigate_back")]
    for a in actions:
        one, two = draw_action(grey_image(), a), draw_action(grey_image(), a)
        assert one.tobytes() == two.tobytes()
    assert "<" not in describe_action(Action.type_text(hostile), Screen(W, H))
    assert describe_action(Action.click(500, 20), Screen(W, H)) == "tap at (500, 20) (outside the screen)"
    assert describe_action(Action.scroll("down"), Screen(W, H)).endswith("the finger swipes up")


# -- verdict parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, ok, verdict, score",
    [
        ("<verdict>yes</verdict><score>0.8</score>", True, True, 0.8),
        ("  <VERDICT> No </Verdict> <score> 0.15 </score>", True, False, 0.15),
        ("<verdict>yes</verdict>", True, True, None),
        ("<think>maybe <verdict>no</verdict></think><verdict>yes</verdict>", True, True, None),
        ("<verdict>yes</verdict><score>7</score>", True, True, None),  # out of range: ignored
        ("<verdict>yes</verdict><score>nan</score>", True, True, None),
        ("<verdict>yes</verdict> or <verdict>no</verdict>", False, None, None),  # echoing the format
        ("<verdict>maybe</verdict>", False, None, None),
        ("The action looks correct.", False, None, None),
        ("", False, None, None),
        (None, False, None, None),
        (["<verdict>yes</verdict>"], False, None, None),
    ],
)
def test_parse_verdict_table(text, ok, verdict, score):
    p = parse_verdict(text)
    assert (p.ok, p.verdict, p.score) == (ok, verdict, score)
    if not ok:
        assert p.error


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/ verdictscoreyesno0.15\n")), max_size=80) | st.text(max_size=80))
def test_parse_verdict_never_raises(text):
    p = parse_verdict(text)
    assert p.ok == (p.verdict is not None)
    assert p.score is None or 0.0 <= p.score <= 1.0


def test_vote_aggregation():
    votes = [parse_verdict(t) for t in ("<verdict>yes</verdict>", "<verdict>no</verdict><score>0.2</score>",
                                        "<verdict>yes</verdict><score>0.7</score>", "garbage")]
    agg = aggregate_votes(votes)
    assert agg.ok and agg.verdict is True and agg.score == pytest.approx((1.0 + 0.2 + 0.7) / 3)
    assert not aggregate_votes([parse_verdict("garbage")]).ok


# -- the judge over HTTP ---------------------------------------------------------------------------
def test_request_carries_drawn_screenshot_goal_and_action(serve, screen_png):
    def behaviour(body, n, headers):
        img = decode_request_image(body)
        text = request_text(body)
        marked = img.size == (W, H) and img.getpixel((100, 300)) == RED and img.getpixel((300, 700)) == GREY
        ok = marked and "Order a large pizza" in text and "tap at (100, 300)" in text
        return reply(f"<verdict>{'yes' if ok else 'no'}</verdict><score>{0.9 if ok else 0.1}</score>")

    srv = serve(behaviour)
    cfg = config(srv.base_url, api_key="sk-test")
    history = (Action.open_app("Pizza"), "tapped the menu")
    with Judge(cfg) as judge:
        res = judge.judge(request(screen_png, Action.click(0.25, 0.375, frame=Frame.NORMALIZED), history=history))
    assert (res.verdict, res.score, res.outcome, res.flagged) == (True, 0.9, "judged", False)
    body, headers = srv.bodies[0], srv.headers[0]
    assert body["model"] == "judge-test" and body["temperature"] == 0.0 and body["n"] == 1
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["messages"][0]["role"] == "system" and "<verdict>" in body["messages"][0]["content"]
    text = request_text(body)
    assert "Tap the order button" in text and 'open the app "Pizza"' in text and "tapped the menu" in text
    assert judge.stats.judged == 1 and judge.stats.cached == 0


def test_cache_survives_a_new_judge_and_a_new_process(serve, screen_png, tmp_path):
    srv = serve(YES)
    db = tmp_path / "cache" / "verdicts.sqlite"
    cfg = config(srv.base_url, cache_path=str(db))
    act = Action.click(120, 340)
    with Judge(cfg) as j1:
        assert j1.judge(request(screen_png, act)).outcome == "judged"
        assert j1.judge(request(screen_png, act)).outcome == "cached"
    assert srv.count == 1
    with Judge(cfg) as j2:  # "restart": new object, same file
        res = j2.judge(request(screen_png, act))
        assert res.outcome == "cached" and res.score == 0.9 and res.verdict is True
        assert "<verdict>yes</verdict>" in res.raw[0]
        # another action, frame or context is a different key
        assert j2.judge(request(screen_png, Action.click(121, 340))).outcome == "judged"
        assert j2.judge(request(screen_png, act, goal="Another goal")).outcome == "judged"
        # the same pixel in another frame is the same key
        same = Action.click(120 / W, 340 / H, frame=Frame.NORMALIZED)
        assert j2.judge(request(screen_png, same)).outcome == "cached"
        assert j2.stats.as_dict()["cached"] == 2
    assert srv.count == 3
    script = (
        "import sys; from rewards.judge import *; from guienv.actions import Action; from guienv.types import ImageRef\n"
        f"cfg = JudgeConfig(model='judge-test', base_url={srv.base_url!r}, cache_path={str(db)!r})\n"
        f"req = JudgeRequest('ep1:0', ImageRef(path={str(screen_png)!r}), Action.click(120, 340),"
        " 'Order a large pizza', 'Tap the order button')\n"
        "with Judge(cfg) as j: r = j.judge(req)\n"
        "print(r.outcome, r.score)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cached", "0.9"]
    assert srv.count == 3
    with JudgeCache(db) as c:
        assert len(c) == 3


def test_identical_requests_in_a_batch_are_asked_once(serve, screen_png):
    def slow_yes(body, n, headers):
        time.sleep(0.2)  # duplicates must arrive while the first is in flight (no cache here)
        return YES(body, n, headers)

    srv = serve(slow_yes)
    reqs = [request(screen_png, Action.click(10 * (i % 3) + 50, 300)) for i in range(9)]
    with Judge(config(srv.base_url)) as judge:
        results = judge.judge_batch(reqs)
    assert srv.count == 3
    assert [r.score for r in results] == [0.9] * 9
    assert sum(r.deduped for r in results) == 6
    s = judge.stats
    assert (s.requests, s.judged, s.deduped, s.cached) == (9, 3, 6, 0)


def test_identical_requests_from_two_threads_share_one_call(serve, screen_png):
    def slow_yes(body, n, headers):
        time.sleep(0.3)
        return YES(body, n, headers)

    srv = serve(slow_yes)
    out = {}
    with Judge(config(srv.base_url)) as judge:
        def ask(k):
            out[k] = judge.judge(request(screen_png, Action.click(7, 7)))

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s = judge.stats
        assert (s.requests, s.judged, s.deduped) == (2, 1, 1)
        assert s.judged + s.cached + s.deduped + s.fallback + s.unparsable == s.requests
    assert srv.count == 1 and sorted(r.deduped for r in out.values()) == [False, True]


def test_concurrency_bound_is_respected(serve, screen_png):
    def slow_yes(body, n, headers):
        time.sleep(0.15)
        return YES(body, n, headers)

    srv = serve(slow_yes)
    reqs = [request(screen_png, Action.click(20 + 30 * i, 300)) for i in range(8)]
    t0 = time.monotonic()
    db = screen_png.parent / "concurrent.sqlite"
    with Judge(config(srv.base_url, max_concurrency=3, cache_path=str(db))) as judge:
        results = judge.judge_batch(reqs)
    assert len(results) == 8 and srv.count == 8
    assert 2 <= srv.max_inflight <= 3
    with JudgeCache(db) as cache:  # every worker thread's verdict was stored
        assert len(cache) == 8
    assert time.monotonic() - t0 >= 3 * 0.15  # 8 requests, at most 3 at a time: 3 rounds


def test_unparsable_answers_are_retried_then_raise_or_fall_back(serve, screen_png):
    srv = serve(lambda body, n, headers: reply("The tap looks right to me."))
    with Judge(config(srv.base_url, unparsable_retries=2)) as judge:
        with pytest.raises(JudgeUnparsable, match="no <verdict>"):
            judge.judge(request(screen_png, Action.click(5, 5)))
    assert srv.count == 3
    assert judge.stats.errors == 1 and judge.stats.unparsable_retries == 2
    cfg = config(srv.base_url, unparsable_retries=0, on_unparsable="fallback", unparsable_score=0.0,
                 cache_path=str(screen_png.parent / "c.sqlite"))
    with Judge(cfg) as judge:
        res = judge.judge(request(screen_png, Action.click(5, 5)))
        assert (res.outcome, res.score, res.verdict, res.flagged) == ("unparsable", 0.0, None, True)
        assert res.raw == ("The tap looks right to me.",)
        assert judge.judge(request(screen_png, Action.click(5, 5))).outcome == "unparsable"  # not cached
        assert judge.stats.unparsable == 2
    assert srv.count == 5


def test_malformed_api_responses_are_retried_then_unavailable(serve, screen_png):
    bodies = [b"not json", json.dumps({"choices": []}).encode(), json.dumps({"error": "x"}).encode()]
    srv = serve(lambda body, n, headers: (200, {}, bodies[(n - 1) % 3]))
    with Judge(config(srv.base_url, max_retries=2)) as judge:
        with pytest.raises(JudgeUnavailable, match="after 3 attempt"):
            judge.judge(request(screen_png, Action.click(5, 5)))
    assert srv.count == 3
    # a 200 whose content is null or a list of parts is read defensively
    srv2 = serve(lambda body, n, headers: (200, {}, json.dumps({"choices": [
        {"message": {"content": [{"type": "text", "text": "<verdict>no</verdict>"}]}}]}).encode()))
    with Judge(config(srv2.base_url)) as judge:
        assert judge.judge(request(screen_png, Action.click(5, 5))).verdict is False


def test_dead_endpoint_raises_or_falls_back_within_the_bound(screen_png):
    url = f"http://127.0.0.1:{free_port()}/v1"
    t0 = time.monotonic()
    with Judge(config(url, timeout_s=0.5, max_retries=2)) as judge:
        with pytest.raises(JudgeUnavailable, match="cannot reach"):
            judge.judge(request(screen_png, Action.click(5, 5)))
        assert judge.backend.counter.calls == 3 and judge.backend.counter.retries == 2
    cfg = config(url, timeout_s=0.5, max_retries=1, on_error="fallback", fallback_score=0.5)
    with Judge(cfg) as judge:
        results = judge.judge_batch([request(screen_png, Action.click(5, 5)), request(screen_png, Action.click(9, 9))])
        assert [(r.outcome, r.score, r.flagged) for r in results] == [("fallback", 0.5, True)] * 2
        assert "cannot reach" in results[0].error
        assert judge.stats.fallback == 2 and judge.stats.judged == 0
    assert time.monotonic() - t0 < 5.0


def test_slow_endpoint_times_out_then_retries_then_fails(serve, screen_png):
    srv = serve(lambda body, n, headers: (time.sleep(1.5), YES(body, n, headers))[1])
    t0 = time.monotonic()
    with Judge(config(srv.base_url, timeout_s=0.25, max_retries=1)) as judge:
        with pytest.raises(JudgeUnavailable, match="timed out"):
            judge.judge(request(screen_png, Action.click(5, 5)))
    elapsed = time.monotonic() - t0
    assert srv.count == 2
    assert elapsed < 1.4  # two 0.25 s attempts plus a short backoff, well under one server reply


def test_429_then_success_is_retried(serve, screen_png):
    def limited(body, n, headers):
        if n == 1:
            return 429, {"Retry-After": "0"}, b'{"error": "rate limited"}'
        if n == 2:
            return 503, {}, b"busy"
        return YES(body, n, headers)

    srv = serve(limited)
    with Judge(config(srv.base_url, max_retries=2)) as judge:
        res = judge.judge(request(screen_png, Action.click(5, 5)))
    assert res.outcome == "judged" and res.score == 0.9
    assert srv.count == 3 and judge.backend.counter.retries == 2


def test_client_errors_are_not_retried(serve, screen_png):
    srv = serve(lambda body, n, headers: (400, {}, b'{"error": "image too large"}'))
    with Judge(config(srv.base_url, on_error="fallback", fallback_score=0.25)) as judge:
        res = judge.judge(request(screen_png, Action.click(5, 5)))
    assert res.outcome == "fallback" and "HTTP 400" in res.error and srv.count == 1


def test_voting_over_n_samples(serve, screen_png):
    # a server that honours "n"
    srv = serve(lambda body, n, headers: reply(*["<verdict>yes</verdict><score>1</score>", "<verdict>no</verdict>",
                                                 "<verdict>yes</verdict><score>0.5</score>"][: body["n"]]))
    with Judge(config(srv.base_url, n_votes=3, vote_temperature=0.8)) as judge:
        res = judge.judge(request(screen_png, Action.click(5, 5)))
    assert res.verdict is True and res.score == pytest.approx(0.5) and res.votes == (1.0, 0.0, 0.5)
    assert srv.count == 1 and srv.bodies[0]["n"] == 3 and srv.bodies[0]["temperature"] == 0.8
    # a server that ignores "n" and answers once per call
    answers = ["<verdict>no</verdict>", "<verdict>no</verdict>", "<verdict>yes</verdict>"]
    srv2 = serve(lambda body, n, headers: reply(answers[(n - 1) % 3]))
    with Judge(config(srv2.base_url, n_votes=3)) as judge:
        res = judge.judge(request(screen_png, Action.click(5, 5)))
    assert srv2.count == 3 and res.verdict is False and res.score == pytest.approx(1 / 3)


def test_image_downscaling_and_bad_inputs(serve, screen_png):
    srv = serve(YES)
    with Judge(config(srv.base_url, max_image_pixels=100 * 200)) as judge:
        judge.judge(request(screen_png, Action.click(100, 300)))
        img = decode_request_image(srv.bodies[0])
        assert img.size == (100, 200) and img.getpixel((25, 75))[0] > 200
        with pytest.raises(ValueError, match="valid Action"):
            judge.judge(request(screen_png, Action.invalid("nope")))
        bad = screen_png.parent / "broken.png"
        bad.write_bytes(b"\x89PNG not really")
        with pytest.raises(DataError):
            judge.judge(request(bad, Action.click(1, 1), width=W, height=H))



def test_text_only_judge_sends_no_image_and_keeps_its_own_cache_entries(serve, screen_png, tmp_path):
    """send_image=False: the request has no image part (a judge served as a text model), states
    the action in pixel words and the screen size, merges extra_body, never reads the screenshot,
    and its verdicts are cached apart from those made with the screenshot."""
    srv = serve(lambda body, n, headers: reply(
        "<verdict>no</verdict><score>0.2</score>" if any(p["type"] == "image_url" for p in body["messages"][-1]["content"])
        else "<verdict>yes</verdict><score>0.7</score>"))
    db = str(tmp_path / "j.sqlite")
    extra = {"structured_outputs": {"regex": "<verdict>(yes|no)</verdict>"}}
    missing = ImageRef(path=tmp_path / "never-written.png")  # the text judge must not open it
    with Judge(config(srv.base_url, send_image=False, extra_body=extra, cache_path=db)) as judge:
        res = judge.judge(request(screen_png, Action.click(100, 300), image=missing, width=W, height=H))
        again = judge.judge(request(screen_png, Action.click(100, 300), image=missing, width=W, height=H))
    assert (res.verdict, res.score, res.outcome, again.outcome) == (True, 0.7, "judged", "cached")
    body = srv.bodies[0]
    assert [p["type"] for p in body["messages"][-1]["content"]] == ["text"]
    assert "do not see the screen" in body["messages"][0]["content"]
    assert body["structured_outputs"] == extra["structured_outputs"]
    text = request_text(body)
    assert "tap at (100, 300)" in text and f"Screen size: {W}x{H} pixels." in text and "Order a large pizza" in text
    with Judge(config(srv.base_url, cache_path=db)) as judge:  # with the screenshot: not the text verdict
        seen = judge.judge(request(screen_png, Action.click(100, 300)))
    assert (seen.verdict, seen.outcome, srv.count) == (False, "judged", 2)
    with pytest.raises(ValueError, match="send_image=False.*needs backend 'openai'"):
        JudgeConfig(model="m", backend="transformers", send_image=False)
    with pytest.raises(DataError, match="send_image"):
        JudgeConfig.from_dict({"model": "m", "send_image": "no"})
    with pytest.raises(ValueError, match="extra_body"):
        JudgeConfig(model="m", extra_body=["n", 2])


def test_hybrid_reward_with_a_text_only_judge(serve, episode):
    srv = serve(lambda body, n, headers: reply("<verdict>yes</verdict><score>0.6</score>"))
    cfg = HybridConfig(judge=config(srv.base_url, send_image=False))
    items = [HybridItem.from_episode(episode, 2, Action.type_text("pepperoni pizza, large"))]
    with HybridReward(cfg) as hr:
        [res] = hr.score_batch(items)
    assert res.source == "judge" and res.judge.score == 0.6 and srv.count == 1
    assert all(p["type"] == "text" for p in srv.bodies[0]["messages"][-1]["content"])
    assert 'type the text "pepperoni pizza, large"' in request_text(srv.bodies[0])

def test_config_validation_and_yaml(tmp_path):
    with pytest.raises(ValueError, match="fallback_score"):
        JudgeConfig(on_error="fallback")
    with pytest.raises(ValueError, match="on_error"):
        JudgeConfig(on_error="ignore")
    y = tmp_path / "hybrid.yaml"
    y.write_text(
        "protocol: plain\njudge_mode: always\nrule_weight: 0.5\njudge_weight: 0.5\n"
        "judge:\n  base_url: http://127.0.0.1:9/v1\n  model: qwen-judge\n  on_error: fallback\n  fallback_score: 0.0\n"
    )
    cfg = HybridConfig.from_yaml(y)
    assert cfg.judge_mode == "always" and cfg.judge.model == "qwen-judge" and cfg.judge.fallback_score == 0.0
    y.write_text("judge_mode: uncertain\njudge:\n  modle: typo\n")
    with pytest.raises(DataError, match="modle"):
        HybridConfig.from_yaml(y)
    j = tmp_path / "judge.yaml"
    j.write_text("judge:\n  model: m\n  max_concurrency: 2\n")
    assert JudgeConfig.from_yaml(j).max_concurrency == 2


# -- hybrid reward ----------------------------------------------------------------------------------
@pytest.fixture
def episode(screen_png) -> Episode:
    img = ImageRef(path=screen_png)
    steps = (
        Step(img, W, H, Action.open_app("Pizza Hut"), instruction="Open the Pizza Hut app"),
        Step(img, W, H, Action.click(100, 300), instruction="Tap the order button", candidates=((60, 260, 140, 340),)),
        Step(img, W, H, Action.type_text("large pepperoni pizza"), instruction="Type large pepperoni pizza"),
        Step(img, W, H, Action.scroll("down"), instruction="Swipe up to see more"),
    )
    return Episode("ep7", "Order a large pepperoni pizza", steps)


def test_hybrid_rules_settle_what_they_can_and_the_judge_the_rest(serve, episode):
    srv = serve(lambda body, n, headers: reply("<verdict>yes</verdict><score>0.8</score>"))
    cfg = HybridConfig(judge=config(srv.base_url))
    preds = [
        (1, Action.click(110, 310)),                       # hit: rule says 1
        (1, Action.click(390, 790)),                       # miss: rule says 0
        (1, Action.invalid("garbled")),                    # unparsable prediction
        (2, Action.type_text("large pepperoni pizza")),    # exact text
        (2, Action.type_text("xq")),                       # clearly wrong text
        (2, Action.type_text("pepperoni pizza, large")),   # paraphrase -> judge
        (0, Action.click(200, 400)),                       # tapping the app icon -> judge
        (3, Action.swipe((200, 600), (200, 200))),         # finger swipe for a scroll -> judge
        (3, Action.scroll("up")),                          # wrong scroll direction: rule says 0
    ]
    items = [HybridItem.from_episode(episode, i, p) for i, p in preds]
    with HybridReward(cfg) as hr:
        results = hr.score_batch(items)
    assert [r.source for r in results] == ["rule"] * 5 + ["judge"] * 3 + ["rule"]
    assert srv.count == 3
    texts = [request_text(b) for b in srv.bodies]  # arrival order varies (concurrent requests)
    (paraphrase,) = [t for t in texts if "pepperoni pizza, large" in t]
    assert [round(r.reward, 6) for r in results] == [1.0, 0.1, 0.0, 1.0, 0.1, 0.82, 0.82, 0.82, 0.1]
    assert results[5].uncertain.startswith("type text differs")
    assert results[6].uncertain == "open_app vs tapping the app icon"
    assert results[7].uncertain == "scroll vs swipe"
    # the history given to the judge is the recorded actions before the step
    assert 'Previous actions:\n1. open the app "Pizza Hut"\n2. tap at (100, 300)\n' in paraphrase
    assert "Step instruction: Type large pepperoni pizza" in paraphrase
    assert hr.stats.as_dict() == {"items": 9, "invalid": 1, "rule_settled": 6, "judge_asked": 3, "judge_flagged": 0}
    # a second GRPO group with the same rollouts costs nothing
    with HybridReward(cfg) as hr2:
        hr2.score_batch(items)
    assert srv.count == 6  # no cache_path configured: asked again
    db = str(episode.steps[0].image.path.parent / "h.sqlite")
    cached_cfg = HybridConfig(judge=config(srv.base_url, cache_path=db))
    with HybridReward(cached_cfg) as hr3:
        hr3.score_batch(items)
        hr3.score_batch(items)
        assert hr3.judge.stats.cached == 3
    assert srv.count == 9


def test_hybrid_modes_and_weights(serve, episode):
    srv = serve(lambda body, n, headers: reply("<verdict>no</verdict><score>0.2</score>"))
    items = [HybridItem.from_episode(episode, 1, Action.click(110, 310)),
             HybridItem.from_episode(episode, 2, Action.type_text("pepperoni pizza, large")),
             HybridItem.from_episode(episode, 1, "not an action at all")]
    never = HybridReward(HybridConfig(judge_mode="never"))
    assert [r.source for r in never.score_batch(items)] == ["rule", "rule", "rule"]
    assert srv.count == 0
    cfg = HybridConfig(judge_mode="always", rule_weight=1.0, judge_weight=1.0, format_weight=0.0,
                       show_reference=True, use_step_instruction=False, judge=config(srv.base_url))
    with HybridReward(cfg) as hr:
        results = hr.score_batch(items)
    assert srv.count == 2  # the unparsable prediction is never sent
    assert [r.source for r in results] == ["judge", "judge", "rule"]
    assert results[0].reward == pytest.approx((1.0 + 0.2) / 2) and results[1].reward == pytest.approx(0.1)
    (text,) = [t for t in map(request_text, srv.bodies) if "pepperoni pizza, large" in t]  # any arrival order
    assert "Step instruction" not in text
    assert 'demonstrator took here (one correct option): type the text "large pepperoni pizza"' in text
    with pytest.raises(ValueError, match="needs a judge"):
        HybridReward(HybridConfig(judge_mode="uncertain"))


def test_hybrid_judge_failure_follows_the_policy(episode):
    url = f"http://127.0.0.1:{free_port()}/v1"
    item = HybridItem.from_episode(episode, 2, Action.type_text("pepperoni pizza, large"))
    with HybridReward(HybridConfig(judge=config(url, timeout_s=0.3, max_retries=0))) as hr:
        with pytest.raises(JudgeUnavailable):
            hr.score_batch([item])
    cfg = HybridConfig(judge=config(url, timeout_s=0.3, max_retries=0, on_error="fallback", fallback_score=0.5))
    with HybridReward(cfg) as hr:
        (res,) = hr.score_batch([item])
    assert res.flagged and res.judge.outcome == "fallback" and res.reward == pytest.approx(0.1 + 0.9 * 0.5)
    assert hr.stats.judge_flagged == 1


def test_text_clearly_wrong():
    assert not text_clearly_wrong("pepperoni pizza large", "large pepperoni pizza", 0.3)
    assert not text_clearly_wrong("Chrome browser", "chrome", 0.3)
    assert text_clearly_wrong("xq", "large pepperoni pizza", 0.3)
    assert text_clearly_wrong("", "pizza", 0.3)


# -- local transformers backend ---------------------------------------------------------------------
def test_transformers_backend_needs_a_model_and_loads_lazily():
    with pytest.raises(ValueError, match="needs config.model"):
        TransformersBackend(JudgeConfig(backend="transformers"))
    backend = TransformersBackend(JudgeConfig(backend="transformers", model="/nonexistent/tiny-judge"))
    assert backend.model_id == "transformers:/nonexistent/tiny-judge"  # nothing loaded yet
    with pytest.raises(JudgeError, match="cannot load judge model"):
        backend.load()


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory) -> str:
    """GUIENV_TINY_MODEL if set, else the project's own tiny random-init Qwen2.5-VL."""
    path = os.environ.get("GUIENV_TINY_MODEL")
    if path and Path(path).is_dir():
        return path
    from agents.tiny_model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl"))


@pytest.mark.slow
def test_transformers_backend_with_tiny_model(screen_png, tiny_model_path):
    path = tiny_model_path
    cfg = JudgeConfig(backend="transformers", model=path, max_tokens=8, unparsable_retries=0,
                      on_unparsable="fallback", unparsable_score=0.0, max_pixels=56 * 56 * 4)
    with Judge(cfg) as judge:
        p = judge.prepare(request(screen_png, Action.click(100, 300)))
        inputs = judge.backend.build_inputs(judge.prompt(p))
        grid = inputs["image_grid_thw"][0]
        pad = judge.backend._tokenizer.convert_tokens_to_ids("<|image_pad|>")
        assert int((inputs["input_ids"][0] == pad).sum()) == int(grid.prod()) // 4
        res = judge.judge(request(screen_png, Action.click(100, 300)))
    assert res.outcome in ("judged", "unparsable") and len(res.raw) == 1
    assert judge.backend.counter.calls == 1
    # voting samples n answers in one generate call and leaves the caller's RNG alone
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with Judge(JudgeConfig(**{**cfg.__dict__, "n_votes": 3, "vote_temperature": 1.0})) as judge:
        res = judge.judge(request(screen_png, Action.click(100, 300)))
    assert len(res.raw) == 3 and judge.backend.counter.calls == 1
    assert torch.equal(torch.rand(3), expected)
