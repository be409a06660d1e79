"""``report.html``: one self-contained page per evaluation run.

Written by every ``guienv eval`` run (and again by ``guienv report DIR``). The page needs nothing
but itself: inline CSS, no scripts, screenshots as base64 ``data:`` URLs, and a Content-Security-Policy
that forbids any other source. It shows

* the run (benchmark, agent and its model/template/frame, protocol, episodes, time);
* the episode table (success rate, return, steps) overall and per slice;
* the benchmark's own metrics as published (:mod:`rewards.metrics`): ScreenSpot text / icon / overall
  accuracy per split, platform and group; AndroidControl type / grounding / step success / episode
  success per split, subsplit and action type;
* sample episodes, failures first: each step's screenshot as a downscaled thumbnail (longest side
  ``thumb_px``) with the ground truth in green (the target box, AndroidControl's candidate boxes, the
  demonstrated point or finger path) and the prediction in red (:func:`guienv.draw.draw_action`),
  plus the actions as JSON, the env's verdict and the raw model text.

Screenshots are not stored by the evaluation: the shown episodes are replayed through the env with
their recorded actions (offline benchmarks serve the recorded screens; SynthApp is deterministic per
seed). A replay whose rewards differ from the recorded ones stops there and says so on the page.
Size is bounded by ``max_episodes * max_steps`` JPEG thumbnails. All text from data or models is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from guienv.actions import Action, ActionType, scroll_to_swipe
from guienv.frames import Frame, Screen

GT_COLOR = (0, 170, 0)
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}h3{font-size:1rem;margin:.2rem 0}
table.metrics{border-collapse:collapse;margin:.4rem 0 1rem;background:#fff}
table.metrics caption{text-align:left;color:#666;font-size:.85rem;padding:.2rem 0}
table.metrics th,table.metrics td{border:1px solid #d0d0d5;padding:.25rem .55rem;text-align:right;font-variant-numeric:tabular-nums}
table.metrics th:first-child,table.metrics td:first-child{text-align:left}
table.metrics thead th{background:#eef0f4}
dl.run{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;margin:.3rem 0}
dl.run dt{font-weight:600}dl.run dd{margin:0;word-break:break-all}
article.episode{background:#fff;border:1px solid #d0d0d5;border-left:6px solid #2e7d32;border-radius:4px;padding:.6rem .8rem;margin:.8rem 0}
article.episode.fail{border-left-color:#c62828}
.steps{display:flex;flex-wrap:wrap;gap:.8rem;align-items:flex-start}
figure{margin:0}figure img{display:block;border:1px solid #ccc;max-width:100%;height:auto}
figcaption{font-size:.78rem;margin-top:.25rem}code,pre{font-size:.75rem;white-space:pre-wrap;word-break:break-all}
pre{background:#f3f3f6;padding:.3rem;margin:.2rem 0;max-height:9rem;overflow:auto}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}.note{color:#666;font-size:.85rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .25rem 0 .8rem;vertical-align:middle}
"""

# Columns of the published-metric tables: (key, header, kind); kind "rate" prints a percentage.
SCREENSPOT_COLUMNS = (("samples", "samples", "int"), ("text_accuracy", "text", "rate"), ("icon_accuracy", "icon", "rate"),
                      ("accuracy", "overall", "rate"), ("unparsed", "unparsed", "int"), ("missing", "missing", "int"))
ANDROIDCONTROL_COLUMNS = (("steps", "steps", "int"), ("episodes", "episodes", "int"), ("type_accuracy", "type", "rate"),
                          ("grounding_accuracy", "grounding", "rate"), ("step_success_rate", "step SR", "rate"),
                          ("episode_success_rate", "episode SR", "rate"), ("missing", "missing", "int"))
SUMMARY_COLUMNS = (("episodes", "episodes", "int"), ("success_rate", "success", "rate"),
                   ("mean_return", "mean return", "float"), ("mean_steps", "mean steps", "float"))


def format_value(value: Any, kind: str) -> str:
    """How a metric is printed: rates as percentages with two decimals, ``-`` for undefined."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "rate":
        return f"{100 * float(value):.2f}"
    if kind == "float":
        return f"{float(value):.3f}"
    return str(int(value))


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _clip(text: str, limit: int = 800) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- tables ---------------------------------------------------------------------------------------
def _table(title: str, prefix: str, blocks: Mapping[str, Any], columns: Sequence[tuple[str, str, str]]) -> str:
    """Rows ``overall`` and ``by_<key>=<group>``; each cell names its metric in ``data-metric``
    (``<prefix>.<block>[.<group>].<key>``) with the exact value in ``data-value``."""
    rows: list[tuple[str, str, Mapping[str, Any]]] = []
    if isinstance(blocks.get("overall"), Mapping):
        rows.append(("overall", "overall", blocks["overall"]))
    for key, groups in blocks.items():
        if key.startswith("by_") and isinstance(groups, Mapping):
            rows += [(f"{key[3:]}={g}", f"{key}.{g}", m) for g, m in groups.items() if isinstance(m, Mapping)]
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in columns)
    body = []
    for label, path, m in rows:
        cells = "".join(
            f'<td data-metric="{_e(f"{prefix}.{path}.{k}")}" data-value="{_e(json.dumps(m.get(k)))}">{format_value(m.get(k), kind)}</td>'
            for k, _, kind in columns
        )
        body.append(f"<tr><td>{_e(label)}</td>{cells}</tr>")
    return (f'<table class="metrics" id="{_e(prefix)}"><caption>{_e(title)}</caption>'
            f"<thead><tr><th>slice</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def metric_tables(metrics: Mapping[str, Any]) -> str:
    """The episode table and the benchmark's published-metric table (HTML)."""
    parts = ["<h2>Episodes</h2>", _table("episodes per slice", "summary", metrics, SUMMARY_COLUMNS)]
    pub = metrics.get("published")
    bench = str(metrics.get("benchmark", ""))
    if isinstance(pub, Mapping):
        if bench.startswith("screenspot"):
            parts += ["<h2>ScreenSpot metrics (point in GT box; text / icon accuracy, %)</h2>",
                      _table("accuracy per split, platform and group", "published", pub, SCREENSPOT_COLUMNS)]
            macro = (pub.get("overall") or {}).get("macro_accuracy")
            parts.append(f'<p>Macro average over (split, type) cells: <b data-metric="published.overall.macro_accuracy" '
                         f'data-value="{_e(json.dumps(macro))}">{format_value(macro, "rate")}</b></p>')
        elif bench == "androidcontrol":
            parts += [f"<h2>AndroidControl metrics ({_e(metrics.get('mode', '?'))}-level, protocol "
                      f"{_e(metrics.get('protocol', '?'))}, %)</h2>",
                      _table("type / grounding / step and episode success", "published", pub, ANDROIDCONTROL_COLUMNS)]
    return "\n".join(parts)


# -- screenshots ----------------------------------------------------------------------------------
def _as_action(d: Any) -> Action | None:
    try:
        return Action.from_dict(d) if isinstance(d, Mapping) else None
    except (KeyError, ValueError, TypeError):
        return None


def draw_step(screenshot: np.ndarray, row: Mapping[str, Any], info: Mapping[str, Any] | None = None,
              thumb_px: int = 360) -> Image.Image:
    """A thumbnail (longest side at most ``thumb_px``) with the ground truth in green and the
    predicted action (``row["action"]``) drawn by :func:`guienv.draw.draw_action`."""
    from guienv.draw import draw_action

    img = Image.fromarray(np.asarray(screenshot, dtype=np.uint8)).convert("RGB")
    w, h = img.size
    screen = Screen(w, h)
    s = min(1.0, thumb_px / max(w, h))
    if s < 1.0:
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    sx, sy = img.width / w, img.height / h
    d = ImageDraw.Draw(img)
    lw = max(1, round(min(img.size) / 120))
    for box in (info or {}).get("candidates") or []:  # AndroidControl: elements holding the target
        x1, y1, x2, y2 = (float(v) for v in box)
        d.rectangle((x1 * sx, y1 * sy, x2 * sx, y2 * sy), outline=GT_COLOR, width=1)
    if row.get("gt_box") is not None:
        x1, y1, x2, y2 = (float(v) for v in row["gt_box"])
        d.rectangle((x1 * sx, y1 * sy, x2 * sx, y2 * sy), outline=GT_COLOR, width=lw + 1)
    gt = _as_action(row.get("gt"))
    if gt is not None and gt.is_valid:
        try:
            g = gt.to_frame(Frame.PIXEL, screen)
            if g.type is ActionType.SCROLL:
                g = scroll_to_swipe(g, screen)
            r = max(4.0, 0.03 * min(img.size))
            if g.point is not None and g.end is not None:  # finger path
                (ax, ay), (bx, by) = g.point, g.end
                d.line((ax * sx, ay * sy, bx * sx, by * sy), fill=GT_COLOR, width=lw + 1)
                d.ellipse((bx * sx - r / 2, by * sy - r / 2, bx * sx + r / 2, by * sy + r / 2), fill=GT_COLOR)
            elif g.point is not None:
                x, y = g.point[0] * sx, g.point[1] * sy
                d.ellipse((x - r, y - r, x + r, y + r), outline=GT_COLOR, width=lw + 1)
                d.line((x - r, y, x + r, y), fill=GT_COLOR, width=lw)
                d.line((x, y - r, x, y + r), fill=GT_COLOR, width=lw)
        except (ValueError, OverflowError, ZeroDivisionError):
            pass  # an unplaceable GT is still shown as text
    pred = _as_action(row.get("action"))
    if pred is not None:
        try:
            img = draw_action(img, pred, screen)
        except (ValueError, OverflowError, ZeroDivisionError):
            pass  # shown as text
    return img


def jpeg_data_url(img: Image.Image, quality: int = 80) -> str:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def replay(env: Any, reset_kwargs: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], max_steps: int):
    """``([(screenshot, info) per shown step], note)``: the episode replayed with its recorded
    actions. Stops (with a note) where a reward differs from the recorded one."""
    obs, info = env.reset(**dict(reset_kwargs))
    shots: list[tuple[np.ndarray, dict]] = []
    for k, row in enumerate(rows[:max_steps]):
        shots.append((np.asarray(obs["screenshot"]).copy(), dict(info)))
        if k + 1 >= min(len(rows), max_steps):
            break
        action = _as_action(row.get("action")) or Action.invalid("unreadable recorded action")
        obs, reward, terminated, truncated, info = env.step(action)
        if float(reward) != float(row.get("reward", reward)) or ((terminated or truncated) and k + 1 < len(rows)):
            return shots, f"the replay diverged from the recorded run after step {k}; later screens are not shown"
    return shots, ""


# -- samples --------------------------------------------------------------------------------------
def _json(v: Any) -> str:
    def rnd(x: Any) -> Any:
        if isinstance(x, float):  # pixels to 0.1; normalized fractions keep 3 decimals
            return round(x, 1 if abs(x) >= 10 else 3)
        if isinstance(x, list):
            return [rnd(y) for y in x]
        if isinstance(x, dict):
            return {k: rnd(y) for k, y in x.items()}
        return x

    return json.dumps(rnd(v), ensure_ascii=False)


def _verdict(row: Mapping[str, Any]) -> str:
    if "exact_match" in row:
        ok = bool(row["exact_match"])
        why = "" if ok else f" ({row.get('reason') or ('type ok' if row.get('type_match') else 'type wrong')})"
        return f'<span class="{"ok" if ok else "bad"}">{"correct" if ok else "wrong"}</span>{_e(why)}'
    if "correct" in row:
        ok = bool(row["correct"])
        return f'<span class="{"ok" if ok else "bad"}">{"hit" if ok else "miss"}</span>'
    why = row.get("invalid_reason")
    return f"reward {float(row.get('reward', 0.0)):g}" + (f" ({_e(why)})" if why else "")


def select_episodes(records: Sequence[Mapping[str, Any]], max_episodes: int) -> list[Mapping[str, Any]]:
    """Failures first (by index), then successes, at most ``max_episodes``."""
    fails = sorted((r for r in records if not r.get("success")), key=lambda r: r["index"])
    oks = sorted((r for r in records if r.get("success")), key=lambda r: r["index"])
    return (fails + oks)[: max(0, max_episodes)]


def sample_cards(records: Sequence[Mapping[str, Any]], steps: Mapping[int, Sequence[Mapping[str, Any]]],
                 env: Any = None, reset_kwargs: Mapping[int, Mapping[str, Any]] | None = None, *,
                 max_episodes: int = 24, max_steps: int = 6, thumb_px: int = 360) -> str:
    chosen = select_episodes(records, max_episodes)
    n_fail = sum(1 for r in records if not r.get("success"))
    out = [f"<h2>Samples</h2><p class='note'>{len(chosen)} of {len(records)} episodes, failures first "
           f"({n_fail} failed). <span class='legend'><span style='background:rgb{GT_COLOR}'></span>ground truth"
           f"<span style='background:rgb(255,0,0)'></span>prediction</span></p>"]
    for rec in chosen:
        idx = rec["index"]
        rows = list(steps.get(idx, ()))
        shots: list[tuple[np.ndarray, dict]] = []
        note = ""
        if env is not None and reset_kwargs is not None and idx in reset_kwargs and rows:
            try:
                shots, note = replay(env, reset_kwargs[idx], rows, max_steps)
            except Exception as exc:  # noqa: BLE001 - the page says why a screenshot is missing
                note = f"screenshots unavailable: {type(exc).__name__}: {exc}"
        elif env is None:
            note = "screenshots not shown (no env to replay the episode)"
        ok = bool(rec.get("success"))
        slices = ", ".join(f"{k}={rec[k]}" for k in ("split", "subsplit", "platform", "data_type") if rec.get(k) is not None)
        out.append(f'<article class="episode {"ok-ep" if ok else "fail"}" data-index="{_e(idx)}">'
                   f'<h3>#{_e(idx)} &middot; id {_e(rec.get("id"))} &middot; '
                   f'<span class="{"ok" if ok else "bad"}">{"success" if ok else "failure"}</span> &middot; '
                   f'return {float(rec.get("return", 0.0)):g} &middot; {int(rec.get("steps", 0))} step(s)'
                   f'{" &middot; " + _e(slices) if slices else ""}</h3>')
        if rec.get("instruction"):
            out.append(f"<p>{_e(_clip(str(rec['instruction']), 600))}</p>")
        if note:
            out.append(f"<p class='note'>{_e(note)}</p>")
        out.append('<div class="steps">')
        for k, row in enumerate(rows[:max_steps]):
            img = ""
            if k < len(shots):
                shot, info = shots[k]
                thumb = draw_step(shot, row, info, thumb_px)
                img = (f'<img src="{jpeg_data_url(thumb)}" width="{thumb.width}" height="{thumb.height}" '
                       f'alt="episode {_e(idx)} step {k}">')
            text = row.get("text")
            raw = f"<div>model output:</div><pre>{_e(_clip(str(text)))}</pre>" if text is not None else ""
            gt = row.get("gt") if row.get("gt") is not None else ({"box": row["gt_box"]} if row.get("gt_box") else None)
            width = max(240, thumb_px // 2 if not img else thumb.width)
            out.append(f"<figure style='width:{width}px'>{img}<figcaption><b>step {k}</b> &middot; {_verdict(row)}"
                       f"<div>GT: <code>{_e(_json(gt))}</code></div>"
                       f"<div>pred: <code>{_e(_json(row.get('action')))}</code></div>{raw}</figcaption></figure>")
        if len(rows) > max_steps:
            out.append(f"<p class='note'>+{len(rows) - max_steps} more step(s)</p>")
        out.append("</div></article>")
    return "\n".join(out)


# -- the page -------------------------------------------------------------------------------------
def _run_info(metrics: Mapping[str, Any]) -> str:
    cfg = metrics.get("config") or {}
    agent_cfg = metrics.get("agent_config") or {}
    items: list[tuple[str, Any]] = [("benchmark", metrics.get("benchmark")), ("data", cfg.get("data")),
                                    ("agent", metrics.get("agent"))]
    for key in ("model", "base_url", "template", "frame", "min_pixels", "max_pixels", "max_new_tokens", "max_tokens", "temperature"):
        if agent_cfg.get(key) is not None:
            items.append((key, agent_cfg[key]))
    for key in ("mode", "protocol"):
        if metrics.get(key) is not None:
            items.append((key, metrics[key]))
    items += [("episodes", (metrics.get("overall") or {}).get("episodes")), ("batch size", cfg.get("batch_size")),
              ("resumed", metrics.get("resumed")), ("seconds (this run)", metrics.get("seconds"))]
    if metrics.get("interrupted"):
        items.append(("status", "interrupted: no metrics.json; finished episodes only, summaries recomputed"))
    return "<dl class='run'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v is not None) + "</dl>"


def build_html(metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
               steps: Mapping[int, Sequence[Mapping[str, Any]]], env: Any = None,
               reset_kwargs: Mapping[int, Mapping[str, Any]] | None = None, *, max_episodes: int = 24,
               max_steps: int = 6, thumb_px: int = 360) -> str:
    title = f"guienv eval: {metrics.get('benchmark')} / {metrics.get('agent')}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{_run_info(metrics)}\n{metric_tables(metrics)}\n"
        f"{sample_cards(records, steps, env, reset_kwargs, max_episodes=max_episodes, max_steps=max_steps, thumb_px=thumb_px)}"
        "\n</body></html>\n"
    )


def write_report(path: str | Path, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                 steps: Mapping[int, Sequence[Mapping[str, Any]]], env: Any = None,
                 reset_kwargs: Mapping[int, Mapping[str, Any]] | None = None, **kwargs: Any) -> Path:
    """Write the page to ``path`` (see :func:`build_html`); returns the path."""
    path = Path(path)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(build_html(metrics, records, steps, env, reset_kwargs, **kwargs), encoding="utf-8")
    tmp.replace(path)
    return path
