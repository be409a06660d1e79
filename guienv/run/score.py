"""``guienv score``: the command line of :func:`rewards.scoring.score` (predictions JSONL made
anywhere, scored on AndroidControl or a ScreenSpot-family benchmark; the formats are described in
:mod:`rewards.scoring`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guienv.errors import DataError
from guienv.frames import Frame
from rewards.action_match import PROTOCOLS
from rewards.scoring import BENCHMARKS, score, summary_table

__all__ = ["add_score_args", "score_main"]


def add_score_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``guienv score`` (run by :func:`score_main`)."""
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    parser.add_argument("--data", required=True, help="benchmark file or directory (read by the benchmark's loader)")
    parser.add_argument("--predictions", required=True, help="predictions JSONL (see rewards.scoring)")
    parser.add_argument("--protocol", default=None,
                        help=f"androidcontrol: one of {sorted(PROTOCOLS)} (default qwen = qwen-content-direction; "
                             "infigui reproduces InfiGUI-R1's evaluator, use it with --frame resized); screenspot: point-in-box")
    parser.add_argument("--out", required=True, help="output directory for metrics.json and verdicts.jsonl")
    parser.add_argument("--frame", default="pixel", choices=[f.value for f in Frame],
                        help="coordinate frame of 'text' predictions without their own 'frame' (default pixel)")
    parser.add_argument("--min-pixels", type=int, default=None,
                        help="smart-resize min_pixels (resized frame; default: the benchmark's reference evaluation)")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="smart-resize max_pixels (resized frame; default: the benchmark's reference evaluation)")
    parser.add_argument("--splits", help="androidcontrol: splits.json (sets per-split metrics)")
    parser.add_argument("--subsplits", help="androidcontrol: test_subsplits.json (sets per-subsplit metrics)")
    return parser


def score_main(args: argparse.Namespace) -> int:
    """Run :func:`rewards.scoring.score` from parsed :func:`add_score_args` arguments; print a summary.
    Returns 0, or 2 with the error on stderr for bad data or arguments."""
    try:
        metrics = score(
            args.benchmark, args.data, args.predictions, args.protocol, args.out,
            frame=args.frame, min_pixels=args.min_pixels, max_pixels=args.max_pixels,
            splits=getattr(args, "splits", None), subsplits=getattr(args, "subsplits", None),
            pixel_keys=("--min-pixels", "--max-pixels"),
        )
    except (DataError, ValueError) as exc:
        print(f"guienv score: error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(metrics))
    print(f"metrics: {Path(args.out) / 'metrics.json'}  verdicts: {Path(args.out) / 'verdicts.jsonl'}")
    return 0
