"""Data and task definitions (layer 2, above ``emulator``): dataset loaders and writers, synthetic
generators, curricula and online task specs. Nothing here imports ``rewards``, ``agents``,
``guienv.envs`` or ``guienv.run``.

Subpackages and modules:

* :mod:`tasks.androidcontrol` -- AndroidControl release shards and the UI-S1 / UI-R1 conversions;
* :mod:`tasks.screenspot` -- the ScreenSpot family (v1, v2, Pro, GUI-G1 JSON, parquet exports);
* :mod:`tasks.synthapp` -- seedable synthetic screens, grounding samples and multi-screen apps;
* :mod:`tasks.tfrecord` -- TFRecord framing and ``tf.train.Example`` without TensorFlow;
* :mod:`tasks.curriculum` -- easy-to-hard curriculum (CRAFT-GUI, arXiv 2508.11360);
* :mod:`tasks.android_tasks` -- online Android tasks judged on device state (android_world style);
* :mod:`tasks.mdp_specs` -- small tabular MDPs from YAML specs.
"""

__all__ = ["android_tasks", "androidcontrol", "curriculum", "mdp_specs", "screenspot", "synthapp", "tfrecord"]
