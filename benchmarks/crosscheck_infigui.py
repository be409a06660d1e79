"""Cross-check ``--protocol infigui`` against InfiGUI-R1's AndroidControl evaluator, run unmodified.

Not part of the tests: it needs the peer files, taken from a clone of ``Reallm-Labs/InfiGUI-R1``::

    mkdir -p /tmp/peer && for f in evaluate_android_control.py android_control.py; do
        git -C InfiGUI-R1 show HEAD:eval/android_control/$f > /tmp/peer/$f; done
    python benchmarks/crosscheck_infigui.py /tmp/peer 2000

Writes seeded episodes as UI-S1 JSONL (guienv's writer), seeded model outputs of every action kind
(reference vocabulary, guienv's lenient names, broken calls), scores them with the reference's
``compute_scores`` and with ``guienv score --protocol infigui --frame resized``, and prints the
per-step agreement per prediction kind and per GT type, then step success when replaying the
ground truth under each protocol (see BENCHMARKS.md).
"""
import contextlib
import io
import json
import random
import sys
import tempfile
import types
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

# android_control.py imports its model wrapper and qwen_vl_utils at the top; compute_scores uses neither.
sys.modules["qwen2vl"] = types.SimpleNamespace(Qwen2VL=None)
# qwen_vl_utils needs torchvision (not installed); transformers ships the same smart_resize.
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize  # noqa: E402

sys.modules["qwen_vl_utils"] = types.SimpleNamespace(smart_resize=smart_resize)
sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "/tmp/peer")
import android_control as peer  # noqa: E402  (unmodified)

from guienv.actions import Action  # noqa: E402
from guienv.frames import Resize, Screen  # noqa: E402
from guienv.io import encode_png, write_jsonl  # noqa: E402
from guienv.types import Episode, ImageRef, Step  # noqa: E402
from rewards.scoring import score  # noqa: E402
from tasks.androidcontrol.ui_s1 import write_ui_s1_jsonl  # noqa: E402

MAX_PIXELS = 6400 * 28 * 28
SIZES = [(1080, 2400), (1080, 2400), (1080, 1920), (720, 1280), (1600, 3200)]  # the last one is downscaled
N_EP = int(sys.argv[2]) if len(sys.argv) > 2 else 300
rng = random.Random(0)
PNGS = {s: encode_png(np.zeros((s[1], s[0], 3), np.uint8)) for s in set(SIZES)}
APPS = ["Clock", "pCloud", "Google Maps", "Zoom", "Files"]
WORDS = ["hello world", "Sculpture Art", "new york", "pizza near me", "42"]


def gt_step(w, h):
    kind = rng.choice(["click"] * 5 + ["long_press", "scroll", "scroll", "type", "open_app", "back", "home", "enter", "wait"])
    png = ImageRef(data=PNGS[(w, h)])
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    bw, bh = rng.uniform(20, w / 2), rng.uniform(20, h / 6)
    box = (round(max(0, x - rng.uniform(0, bw))), round(max(0, y - rng.uniform(0, bh))), 0, 0)
    box = (box[0], box[1], round(min(w, box[0] + bw)), round(min(h, box[1] + bh)))
    cands = [box] if rng.random() < 0.85 else []
    if kind in ("click", "long_press"):
        a = Action.click(round(x), round(y)) if kind == "click" else Action.long_press(round(x), round(y))
        return Step(image=png, width=w, height=h, action=a, candidates=tuple(cands))
    if kind == "scroll":
        return Step(image=png, width=w, height=h, action=Action.scroll(rng.choice(["up", "down", "left", "right"])))
    if kind == "type":
        return Step(image=png, width=w, height=h, action=Action.type_text(rng.choice(WORDS)))
    if kind == "open_app":
        return Step(image=png, width=w, height=h, action=Action.open_app(rng.choice(APPS)), candidates=tuple(cands))
    simple = {"back": "navigate_back", "home": "navigate_home", "enter": "keyboard_enter", "wait": "wait"}[kind]
    return Step(image=png, width=w, height=h, action=Action.simple(simple))


def pt(w, h):
    return [rng.choice([round, lambda v: round(v, 2)])(rng.uniform(-0.05, 1.05) * d) for d in (w, h)]


def near(p, rw, rh, scale):
    return [p[0] + rng.gauss(0, scale * rw), p[1] + rng.gauss(0, scale * rh)]


def predict(check, content, rw, rh, sx, sy):
    """(kind, text): a seeded prediction of every kind, coordinates in the resized frame."""
    gp = [c * s for c, s in zip(content.get("coordinate", [0.5 / sx * rw, 0.5 / sy * rh]), (sx, sy))]
    likely = {"click": ["click", "click", "tap", "long_press"], "long_press": ["long_press", "click"],
              "swipe": ["swipe", "swipe_replay", "swipe_zero", "swipe_tie", "swipe_dir_only", "scroll"],
              "type": ["type", "type", "open"], "open": ["open", "open", "open_click", "open_app"],
              "system_button": ["system_button", "system_button", "key"], "wait": ["wait"]}.get(check.get("action"))
    if likely and rng.random() < 0.6:
        kind = rng.choice(likely + ["gt"])
    else:
        kind = rng.choice(["click", "long_press", "swipe", "swipe_replay", "swipe_zero", "swipe_tie", "swipe_dir_only",
                           "type", "open", "open_click", "system_button", "wait", "terminate", "key", "tap", "open_app",
                           "scroll", "broken", "gt"])
    if kind == "gt":  # the recorded action itself, or a perturbation of it
        args = dict(content)
        for k in ("coordinate", "coordinate2"):
            if k in args:
                args[k] = [args[k][0] * sx, args[k][1] * sy]
                if rng.random() < 0.5:
                    args[k] = near(args[k], rw, rh, 0.03)
    elif kind in ("click", "long_press", "tap", "open_click"):
        c = near(gp, rw, rh, rng.choice([0.005, 0.03, 0.1])) if rng.random() < 0.8 else pt(rw, rh)
        args = {"action": "click" if kind == "open_click" else kind, "coordinate": [round(v) if rng.random() < 0.5 else v for v in c]}
    elif kind == "swipe":
        args = {"action": "swipe", "coordinate": pt(rw, rh), "coordinate2": pt(rw, rh)}
    elif kind == "swipe_replay":
        args = {"action": "swipe", "coordinate": [rw / 2, rh * 0.75], "coordinate2": [rw / 2, rh * 0.25]}
        if rng.random() < 0.5:
            args["coordinate"], args["coordinate2"] = args["coordinate2"], args["coordinate"]
        if rng.random() < 0.3:
            args["coordinate"], args["coordinate2"] = [rw * 0.75, rh / 2], [rw * 0.25, rh / 2]
    elif kind == "swipe_zero":
        p = pt(rw, rh)
        args = {"action": "swipe", "coordinate": p, "coordinate2": list(p)}
    elif kind == "swipe_tie":
        p, d = pt(rw, rh), rng.uniform(0.05, 0.3)
        args = {"action": "swipe", "coordinate": p, "coordinate2": [p[0] + rng.choice([-1, 1]) * d * rw, p[1] + rng.choice([-1, 1]) * d * rh * rng.choice([1, 0.9, 1.1])]}
    elif kind in ("swipe_dir_only", "scroll"):
        args = {"action": "swipe" if kind == "swipe_dir_only" else "scroll", "direction": rng.choice(["up", "down", "left", "right"])}
    elif kind in ("type", "open", "open_app"):
        gt_text = content.get("text") or rng.choice(WORDS + APPS)
        text = rng.choice([gt_text, gt_text.upper() + " ", gt_text[: max(1, len(gt_text) // 2)], gt_text + " now",
                           rng.choice(WORDS + APPS), "", "   ", 7])
        args = {"action": kind, "text": text}
    elif kind == "system_button":
        args = {"action": "system_button", "button": rng.choice(["Back", "Home", "Menu", "Enter", "back ", "HOME", None])}
        if args["button"] is None:
            del args["button"]
    elif kind == "wait":
        args = {"action": "wait", "time": 2}
    elif kind == "terminate":
        args = {"action": "terminate", "status": "success"}
    elif kind == "key":
        args = {"action": "key", "text": rng.choice(["back", "home", "enter"])}
    else:  # broken or odd text
        return kind, rng.choice([
            "I will click the button.", '{"action": "click", "coordinate": [1, 2]}',
            "<tool_call>{not json}</tool_call>", "<tool_call>[1, 2]</tool_call>",
            '<tool_call>{"name": "mobile_use", "arguments": "click"}</tool_call>',
            '<tool_call>{"name": "mobile_use", "arguments": {"coordinate": [1, 2]}}</tool_call>',
            '<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [NaN, 3]}}</tool_call>',
            '<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [546]}}</tool_call>',
            '<tool_call>{"name": "mobile_use", "arguments": {"action": "swipe", "coordinate": [1, 2, 3], "coordinate2": [5, 9, 1]}}</tool_call>',
        ])
    call = json.dumps({"name": "mobile_use", "arguments": args})
    wrap = rng.choice(["<tool_call>\n{}\n</tool_call>", "<think>plan</think>\n<tool_call>\n{}\n</tool_call>",
                       "{} <conclusion>done</conclusion>", "Action: {}"])
    return kind, wrap.format(call)


def main():
    tmp = Path(tempfile.mkdtemp(prefix="infigui-xcheck-"))
    episodes = []
    for i in range(N_EP):
        w, h = rng.choice(SIZES)
        episodes.append(Episode(str(1000 + i), "goal", tuple(gt_step(w, h) for _ in range(rng.randint(1, 8)))))
    data = tmp / "android_control_evaluation_std.jsonl"
    write_ui_s1_jsonl(episodes, data)
    lines = [json.loads(x) for x in data.read_text().splitlines()]
    size = {e.id: (e.steps[0].width, e.steps[0].height) for e in episodes}

    def run_peer(preds):
        jobs = []
        for ep in lines:
            w, h = size[str(ep["episode_id"])]
            h_bar, w_bar = smart_resize(h, w, max_pixels=MAX_PIXELS)  # as generate_jobs does
            rw, rh = w_bar, h_bar
            for i, s in enumerate(ep["steps"]):
                jobs.append({"llm_output": preds[(str(ep["episode_id"]), i)][1], "check_pams": s["check_options"],
                             "width": w, "height": h, "resized_width": rw, "resized_height": rh})
        fake = types.SimpleNamespace(thinking=True, model_path="x/guienv-xcheck", output_dir=str(tmp / "peer"), debug=False, eval_type="low")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            peer.AndroidControl.compute_scores(fake, jobs)
        return [(bool(j.get("type_match")), bool(j.get("extact_match"))) for j in jobs]

    def run_guienv(preds, protocol, name):
        rows = [{"episode_id": k[0], "step_index": k[1], "text": v[1], "frame": "resized"} for k, v in preds.items()]
        write_jsonl(tmp / f"{name}.jsonl", rows)
        score("androidcontrol", data, tmp / f"{name}.jsonl", protocol, tmp / f"out-{name}-{protocol}", frame="resized", max_pixels=MAX_PIXELS)
        v = [json.loads(x) for x in (tmp / f"out-{name}-{protocol}" / "verdicts.jsonl").read_text().splitlines()]
        return [(r["type_match"], r["exact_match"]) for r in v], [r["gt_type"] for r in v]

    # 1. seeded predictions of every kind
    preds = {}
    for ep in lines:
        w, h = size[str(ep["episode_id"])]
        rw, rh = Screen(w, h, Resize(max_pixels=MAX_PIXELS)).resized
        for i, s in enumerate(ep["steps"]):
            preds[(str(ep["episode_id"]), i)] = predict(s["check_options"], s["action_content"], rw, rh, rw / w, rh / h)
    ref = run_peer(preds)
    ours, gt_types = run_guienv(preds, "infigui", "seeded")
    by_kind, by_gt = defaultdict(Counter), defaultdict(Counter)
    for (kind, _), a, b, g in zip(preds.values(), ref, ours, gt_types):
        by_kind[kind]["n"] += 1
        by_kind[kind]["agree"] += a == b
        by_gt[g]["n"] += 1
        by_gt[g]["agree"] += a == b
    n = len(ref)
    print(f"steps {n}, episodes {len(lines)}; verdict (type_match, exact_match) agreement: "
          f"{sum(a == b for a, b in zip(ref, ours))}/{n}")
    print("| prediction kind | steps | agree |")
    for kind, c in sorted(by_kind.items()):
        print(f"| {kind} | {c['n']} | {c['agree']}/{c['n']} |")
    print("| GT type | steps | agree |")
    for g, c in sorted(by_gt.items()):
        print(f"| {g} | {c['n']} | {c['agree']}/{c['n']} |")
    print("reference exact/type:", sum(e for _, e in ref) / n, sum(t for t, _ in ref) / n)

    # 2. replaying the ground truth (UI-S1's action_content, resized frame)
    gt_preds = {}
    for ep in lines:
        w, h = size[str(ep["episode_id"])]
        rw, rh = Screen(w, h, Resize(max_pixels=MAX_PIXELS)).resized
        for i, s in enumerate(ep["steps"]):
            args = dict(s["action_content"])
            for k in ("coordinate", "coordinate2"):
                if k in args:
                    args[k] = [args[k][0] * rw / w, args[k][1] * rh / h]
            gt_preds[(str(ep["episode_id"]), i)] = ("gt", "<tool_call>\n" + json.dumps({"name": "mobile_use", "arguments": args}) + "\n</tool_call>")
    ref_gt = run_peer(gt_preds)
    print(f"GT replay, reference: step success {100 * sum(e for _, e in ref_gt) / len(ref_gt):.2f}%")
    for protocol in ("infigui", "qwen-content-direction", "os-atlas", "gui-r1", "plain"):
        v, _ = run_guienv(gt_preds, protocol, "gt")
        agree = sum(a == b for a, b in zip(ref_gt, v)) if protocol == "infigui" else None
        print(f"GT replay, {protocol}: step success {100 * sum(e for _, e in v) / len(v):.2f}%"
              + (f" (agreement with the reference {agree}/{len(v)})" if agree is not None else ""))


if __name__ == "__main__":
    main()
