"""AndroidControl episodes: the release's TFRecord shards and the two common JSON conversions.

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
``google-research/google-research: android_control/README.md``). One module per source format:
:mod:`~tasks.androidcontrol.release` (TFRecord shards of ``tf.train.Example`` with
accessibility-tree protos, candidate boxes), :mod:`~tasks.androidcontrol.ui_s1` (UI-S1 JSONL),
:mod:`~tasks.androidcontrol.ui_r1` (UI-R1 JSON); :mod:`~tasks.androidcontrol.actions` maps
AndroidControl's action JSON, :mod:`~tasks.androidcontrol.common` holds what the formats share and
:mod:`~tasks.androidcontrol.dataset` the :class:`EpisodeDataset` and :func:`load_androidcontrol`,
which reads all three. See ``docs/datasets.md``.
"""

from tasks.androidcontrol.actions import action_from_androidcontrol, action_to_androidcontrol
from tasks.androidcontrol.common import CandidateMode, OnError
from tasks.androidcontrol.dataset import SHARD_PATTERNS, SPLIT_NAMES, SUBSPLIT_NAMES, EpisodeDataset, load_androidcontrol
from tasks.androidcontrol.release import (
    RELEASE_FEATURES,
    WHOLE_SCREEN_FRACTION,
    candidate_boxes,
    elements_from_forest,
    episode_features,
    forest_from_elements,
    parse_release_episode,
    write_androidcontrol_tfrecord,
)
from tasks.androidcontrol.ui_r1 import write_ui_r1_json
from tasks.androidcontrol.ui_s1 import UI_S1_WAIT_SECONDS, action_from_ui_s1, ui_s1_step_record, ui_s1_swipe, write_ui_s1_jsonl

__all__ = [
    "RELEASE_FEATURES",
    "SHARD_PATTERNS",
    "SPLIT_NAMES",
    "SUBSPLIT_NAMES",
    "UI_S1_WAIT_SECONDS",
    "WHOLE_SCREEN_FRACTION",
    "CandidateMode",
    "EpisodeDataset",
    "OnError",
    "action_from_androidcontrol",
    "action_from_ui_s1",
    "action_to_androidcontrol",
    "candidate_boxes",
    "elements_from_forest",
    "episode_features",
    "forest_from_elements",
    "load_androidcontrol",
    "parse_release_episode",
    "ui_s1_step_record",
    "ui_s1_swipe",
    "write_androidcontrol_tfrecord",
    "write_ui_r1_json",
    "write_ui_s1_jsonl",
]
