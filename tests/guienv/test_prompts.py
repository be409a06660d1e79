"""One prompt builder: the prompt of a step is the same through training and through ``guienv eval``.

Training path: ``guienv.run.train.load_tasks`` (or ``agents.train_prompts.episode_prompts`` for
recorded SynthApp app trajectories) in the policy's frame, ``Policy.messages``/``Policy.encode``.
Evaluation path: ``guienv.run.evaluate.make_env`` with the agent, reset/step with the ground truth,
``QwenAgent.prompt``/``QwenAgent.inputs``. Both run on the tiny random-init Qwen2.5-VL checkpoint,
whose frame is ``resized`` with the agent's pixel bounds (smaller than the screens here, so a
history written in another frame or without numbers shows up as a text difference).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.policy import Policy
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.tiny_model import build_tiny_model
from agents.train_prompts import TrainPrompt, episode_prompts
from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen
from guienv.io import encode_png
from guienv.prompts import (
    TEMPLATES,
    history_text,
    observation_messages,
    previous_screens_intro,
    step_images,
    step_messages,
)
from guienv.run.evaluate import EvalConfig, make_env
from guienv.run.train_config import DataConfig
from guienv.run.train_data import load_tasks
from guienv.types import Episode, ImageRef, Step

SYNTH = {"width": 224, "height": 392}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    tiny = build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")
    return QwenAgent(QwenAgentConfig(model=str(tiny), max_new_tokens=4, max_pixels=64 * 28 * 28, dtype="float32",
                                     image_backend="pil"))


@pytest.fixture(scope="module")
def policy(agent):
    return Policy(agent)


def _same_prompt(policy: Policy, agent: QwenAgent, template: str, train: TrainPrompt, obs: dict) -> str:
    """Assert the training and evaluation prompts agree (text, images, token ids, pixel values)."""
    agent.cfg.template = template
    assert train.template == template
    train_text = policy.tokenizer.apply_chat_template(policy.messages(train), tokenize=False, add_generation_prompt=True)
    eval_text = agent.prompt(obs)
    assert train_text == eval_text
    train_images, eval_images = train.load_images(), step_images(obs)
    assert len(train_images) == len(eval_images) == train_text.count("<|vision_start|>")
    for a, b in zip(train_images, eval_images):
        assert a.shape == b.shape and np.array_equal(a, b)
    enc, batch = policy.encode(train), agent.inputs([obs])
    assert enc.ids.tolist() == batch["input_ids"][0].tolist()
    assert np.array_equal(enc.pixel_values.numpy(), batch["pixel_values"].cpu().numpy())
    return eval_text


def _walk(env, reset_kwargs: dict, steps: int, key: str) -> tuple[dict, dict]:
    """Reset, then step ``steps`` times with the ground truth action in ``info[key]``."""
    obs, info = env.reset(**reset_kwargs)
    for _ in range(steps):
        obs, _, terminated, _, info = env.step(info[key])
        assert not terminated
    return obs, info


# -- AndroidControl ------------------------------------------------------------------------------
@pytest.mark.parametrize("history_images", [0, 1, 2])
@pytest.mark.parametrize("mode", ["low", "high"])
def test_androidcontrol_prompt_is_the_same_in_training_and_eval(policy, agent, androidcontrol_file, mode,
                                                                history_images):
    template = f"androidcontrol-{mode}"
    data = load_tasks(DataConfig(source="androidcontrol", path=str(androidcontrol_file), eval_size=1,
                                 template=template, history_images=history_images),
                      template, frame=policy.frame, resize=policy.resize)
    prompts = {t.id: t for t in data.train + data.eval}
    cfg = EvalConfig(benchmark="androidcontrol", data=str(androidcontrol_file), mode=mode,
                     history_images=history_images)
    env = make_env(cfg, agent=agent)
    try:
        for index in range(3):
            obs, info = _walk(env, {"options": {"index": index}}, 2, "gt_action")  # step 2: click + scroll before
            text = _same_prompt(policy, agent, template, prompts[f"{info['episode_id']}:2"], obs)
            assert obs["history"].splitlines()[0].startswith("1. ") and obs["history"].splitlines()[1].startswith("2. ")
            click = json.loads(obs["history"].splitlines()[0][3:])
            assert click["frame"] == "resized"  # the agent's frame, not the env's pixel default
            screen = Screen(360, 640, agent.resize)
            assert click["point"] == list(Action.click(180, 230).to_frame(Frame.RESIZED, screen).point)
            assert text.count("<|vision_start|>") == 1 + min(history_images, 2)
    finally:
        env.close()


# -- ScreenSpot and SynthApp grounding -------------------------------------------------------------
@pytest.mark.parametrize("template", ["gui-g1", "gui-g1-text-first", "synthapp"])
def test_screenspot_prompt_is_the_same_in_training_and_eval(policy, agent, screenspot_dir, template):
    data = load_tasks(DataConfig(source="screenspot", path=str(screenspot_dir), eval_size=2), template)
    prompts = {t.id: t for t in data.train + data.eval}
    env = make_env(EvalConfig(benchmark="screenspot", data=str(screenspot_dir)), agent=agent)
    for index in (1, 4):
        obs, info = env.reset(options={"index": index})
        _same_prompt(policy, agent, template, prompts[info["id"]], obs)
    env.close()


@pytest.mark.parametrize("template", ["gui-g1", "gui-g1-text-first", "synthapp"])
def test_synthapp_grounding_prompt_is_the_same_in_training_and_eval(policy, agent, template):
    data = load_tasks(DataConfig(source="synthapp", train_size=3, eval_size=1, synth=SYNTH, seed=5), template)
    env = make_env(EvalConfig(benchmark="synthapp", mode="grounding", env_kwargs={"config": SYNTH}), agent=agent)
    for train in data.train:
        index = int(train.id.rsplit("-", 1)[1])
        obs, _ = env.reset(options={"task_seed": 5, "index": index})
        _same_prompt(policy, agent, template, train, obs)
    env.close()


@pytest.mark.parametrize("template", ["synthapp", "gui-g1"])
def test_synthapp_app_prompt_is_the_same_for_a_recorded_trajectory(policy, agent, template):
    """An app episode recorded with the oracle (PNG screens, the project's Step/Episode types) and
    turned into training prompts with ``episode_prompts`` prompts like the env at that step."""
    env = make_env(EvalConfig(benchmark="synthapp", mode="app", env_kwargs={"config": SYNTH, "steps": 3}), agent=agent)
    obs, info = env.reset(seed=3)
    steps, observations = [], []
    while len(steps) < 3:
        action = Action.from_dict(info["oracle_action"])
        h, w = obs["screenshot"].shape[:2]
        steps.append(Step(image=ImageRef(data=encode_png(obs["screenshot"]), where=f"step {len(steps)}"), width=w,
                          height=h, action=action, instruction=obs["instruction"]))
        observations.append(obs)
        obs, _, terminated, _, info = env.step(info["oracle_action"])
        if terminated:
            break
    env.close()
    assert len(steps) >= 2
    episode = Episode(id="app-3", goal=observations[0]["instruction"], steps=tuple(steps))
    prompts = episode_prompts(episode, template, frame=policy.frame, resize=policy.resize)
    for train, obs in zip(prompts, observations):
        _same_prompt(policy, agent, template, train, obs)


# -- the builders themselves ----------------------------------------------------------------------
def test_history_text_numbers_actions_in_the_given_frame_of_their_own_screens():
    wide, tall = Screen(1000, 500), Screen(400, 800, Resize(max_pixels=64 * 28 * 28))
    actions = [Action.click(500, 250), Action.scroll("down"), Action.swipe((200, 600), (200, 200)), Action.type_text("ü")]
    text = history_text(actions, [wide, tall, tall, tall], "grid1000")
    lines = text.splitlines()
    assert [line.split(". ", 1)[0] for line in lines] == ["1", "2", "3", "4"]
    rows = [json.loads(line.split(". ", 1)[1]) for line in lines]
    assert rows[0] == {"type": "click", "point": [500.0, 500.0], "frame": "grid1000"}
    assert rows[1] == Action.scroll("down").to_dict()  # no coordinates: nothing to convert
    assert rows[2]["point"] == [500.0, 750.0] and rows[2]["end"] == [500.0, 250.0]
    assert "ü" in lines[3]  # readable text, not \\u escapes
    resized = json.loads(history_text([Action.click(200, 400)], [tall], Frame.RESIZED).split(". ", 1)[1])
    rw, rh = tall.resized
    assert resized["point"] == pytest.approx([200 * rw / 400, 400 * rh / 800])
    assert history_text([], [], "pixel") == ""
    with pytest.raises(ValueError, match="one screen per action"):
        history_text(actions, [wide], "pixel")


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_step_messages_put_previous_screens_first_with_the_intro(template):
    fields = {"instruction": "tap OK", "goal": "g", "history": "1. {}"}
    one = step_messages(template, fields)
    assert [p["type"] for p in one[-1]["content"]].count("image") == 1
    three = step_messages(template, fields, 2)
    content = three[-1]["content"]
    assert [p["type"] for p in content[:3]] == ["image", "image", "text"]
    assert content[2]["text"] == previous_screens_intro(2)
    assert content[3:] == one[-1]["content"]
    screens = [np.zeros((4, 4, 3), np.uint8) + i for i in range(3)]
    obs = {**fields, "screenshot": screens[2], "previous_screenshots": tuple(screens[:2])}
    assert observation_messages(template, obs) == three
    assert [int(im[0, 0, 0]) for im in step_images(obs)] == [0, 1, 2]


def test_androidcontrol_history_images_are_the_previous_recorded_screens(androidcontrol_file):
    from gymnasium.utils.env_checker import check_env

    from tasks.androidcontrol import load_androidcontrol

    env = make_env(EvalConfig(benchmark="androidcontrol", data=str(androidcontrol_file), history_images=1))
    check_env(env.unwrapped)
    episode = load_androidcontrol(str(androidcontrol_file))[0]
    obs, info = env.reset(options={"index": 0})
    assert obs["previous_screenshots"] == () and env.observation_space.contains(obs)
    for t in (1, 2):
        obs, _, _, _, info = env.step(info["gt_action"])
        (prev,) = obs["previous_screenshots"]  # at most history_images of them
        assert np.array_equal(prev, episode.steps[t - 1].image.load())
        assert env.observation_space.contains(obs)
    obs["previous_screenshots"][0][:] = 0  # a copy: the env's next observation is unchanged
    assert np.array_equal(env.unwrapped._obs()["previous_screenshots"][0], episode.steps[1].image.load())
    env.close()
    with pytest.raises(ValueError, match="history-images"):
        make_env(EvalConfig(benchmark="screenspot", data="x", history_images=1))


def test_api_agent_sends_previous_screens_first_in_the_shared_messages():
    import base64
    import io

    from PIL import Image

    from agents.api import ApiAgent, ApiAgentConfig

    screens = [np.full((56, 84, 3), 40 * (i + 1), np.uint8) for i in range(3)]
    obs = {"goal": "g", "instruction": "tap", "history": "1. {}", "screenshot": screens[2],
           "previous_screenshots": tuple(screens[:2])}
    with ApiAgent(ApiAgentConfig(model="m", template="androidcontrol-low", frame="pixel")) as api:
        body, size = api.payload(obs)
    content = body["messages"][-1]["content"]
    expected = observation_messages("androidcontrol-low", obs)[-1]["content"]
    assert [p["type"] for p in content] == ["image_url" if p["type"] == "image" else "text" for p in expected]
    assert [p["text"] for p in content if p["type"] == "text"] == [p["text"] for p in expected if p["type"] == "text"]
    sent = [np.asarray(Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]))).convert("RGB"))
            for p in content if p["type"] == "image_url"]
    assert [int(im[0, 0, 0]) for im in sent] == [40, 80, 120] and size == (84, 56)


# -- multi-step views (guienv.history) and the text templates ---------------------------------------
def test_synthapp_template_is_unchanged_without_history_and_adds_it_and_feedback_when_present():
    from guienv.prompts import ANDROID_ACTIONS, render

    def text(fields):
        return render("synthapp", fields)[0]["content"][1]["text"]

    assert text({"instruction": "open Mail"}) == f"Task: open Mail\n{ANDROID_ACTIONS}"
    assert text({"instruction": "open Mail", "history": ""}) == f"Task: open Mail\n{ANDROID_ACTIONS}"
    full = text({"instruction": "open Mail", "history": "1. {\"type\": \"wait\"}",
                 "feedback": "Your last action was invalid: no element there."})
    assert full == ("Task: open Mail\nPrevious actions:\n1. {\"type\": \"wait\"}\n"
                    f"Your last action was invalid: no element there.\n{ANDROID_ACTIONS}")


def test_alfworld_prompt_moved_to_prompts_keeps_the_env_names_and_text():
    from guienv.envs import alfworld as env_module
    from guienv.prompts import ALFWORLD_PROMPT, ALFWORLD_PROMPT_NO_HISTORY, alfworld_prompt, render

    assert env_module.format_prompt is alfworld_prompt
    assert env_module.PROMPT == ALFWORLD_PROMPT and env_module.PROMPT_NO_HISTORY == ALFWORLD_PROMPT_NO_HISTORY
    view = {"observation": "You arrive at x.", "task": "put a potato in sinkbasin.", "step": 5,
            "admissible_commands": ["look", "inventory"], "history": [("o4", "look"), ("o5", "go to x")]}
    text = render("alfworld", view)[0]["content"][0]["text"]
    assert text == alfworld_prompt(view["task"], view["observation"], view["admissible_commands"], view["history"], 5)
    assert "[Observation 4: 'o4', Action 4: 'look']\n[Observation 5: 'o5', Action 5: 'go to x']" in text
    assert "You are now at step 6" in text


@pytest.mark.parametrize("template", ["text", "alfworld"])
def test_text_templates_have_no_image_slot_and_survive_hostile_text(template):
    from guienv.prompts import TEXT_TEMPLATES, render

    assert template in TEXT_TEMPLATES and template not in TEMPLATES
    hostile = "{x} {0} '\"]) <action>" * 3
    view = {"observation": hostile, "task": hostile, "admissible_commands": [hostile], "step": 2,
            "history": [(hostile, hostile)] * 2, "feedback": "Your last action was invalid."}
    msgs = observation_messages(template, view)
    assert [p["type"] for p in msgs[-1]["content"]] == ["text"] and step_images(view) == []
    assert hostile in msgs[-1]["content"][0]["text"] and view["feedback"] in msgs[-1]["content"][0]["text"]
    with pytest.raises(ValueError, match="string 'observation'"):
        render(template, {"instruction": "tap OK"})
    with pytest.raises(ValueError, match="'step' must be a non-negative integer"):
        render(template, {**view, "step": -1})
    with pytest.raises(ValueError, match="no image slots"):
        step_messages(template, view, 1)
