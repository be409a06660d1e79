"""``guienv.config``, the one config loader: YAML files written to tmp, every check named by file
and dotted key; and the configs that load through it (train, judge, hybrid)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from guienv.config import (
    ConfigValueError,
    apply_override,
    check_pixel_range,
    config_to_dict,
    load_config,
    load_yaml,
    read_yaml,
)
from guienv.errors import DataError

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Inner:
    rate: float = 0.5
    name: str = "a"

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate}")


@dataclass
class Outer:
    steps: int = 10
    lr: float = 1e-3
    flag: bool = False
    mode: Literal["staged", "random"] = "staged"
    limit: int | None = None
    pair: tuple[int, int] = (1, 2)
    names: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    maybe: Inner | None = None


def _yaml(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _error(tmp_path: Path, text: str, overrides=()) -> DataError:
    with pytest.raises(DataError) as e:
        load_yaml(Outer, _yaml(tmp_path, text), overrides)
    assert "cfg.yaml" in str(e.value)
    return e.value


def test_a_full_file_loads_with_every_type(tmp_path):
    cfg = load_yaml(Outer, _yaml(tmp_path, (
        "steps: 3\nlr: 1e-6\nflag: true\nmode: random\nlimit: 7\npair: [3, 4]\nnames: [x, y]\n"
        "extra: {a: 1}\ninner: {rate: 0.25, name: b}\nmaybe: {rate: 1}\n")))
    assert cfg.steps == 3 and cfg.lr == 1e-6 and isinstance(cfg.lr, float)  # YAML 1.1 reads 1e-6 as a string
    assert cfg.flag is True and cfg.mode == "random" and cfg.limit == 7
    assert cfg.pair == (3, 4) and cfg.names == ("x", "y") and cfg.extra == {"a": 1}
    assert cfg.inner == Inner(0.25, "b") and cfg.maybe == Inner(1.0, "a")
    assert load_yaml(Outer, _yaml(tmp_path, "")) == Outer()  # an empty file: every default


def test_unknown_keys_name_the_file_and_dotted_key(tmp_path):
    e = _error(tmp_path, "stepz: 3\n")
    assert e.field == "stepz" and "steps" in str(e)  # the known keys are listed
    e = _error(tmp_path, "inner: {ratee: 0.1}\n")
    assert e.field == "inner.ratee" and "inner.ratee" in str(e)


@pytest.mark.parametrize("text, key, what", [
    ("steps: ten\n", "steps", "an integer"),
    ("steps: 1.5\n", "steps", "an integer"),
    ("steps: true\n", "steps", "an integer"),
    ("lr: fast\n", "lr", "a number"),
    ("flag: 1\n", "flag", "true or false"),
    ("inner: {name: 3}\n", "inner.name", "a string"),
    ("mode: sometimes\n", "mode", "one of"),
    ("limit: many\n", "limit", "an integer"),
    ("pair: [1, 2, 3]\n", "pair", "a list of 2 items"),
    ("pair: [1, x]\n", "pair[1]", "an integer"),
    ("names: abc\n", "names", "a list"),
    ("extra: {a: b}\n", "extra.a", "an integer"),
    ("inner: 3\n", "inner", "a mapping"),
])
def test_wrong_types_name_the_dotted_key(tmp_path, text, key, what):
    e = _error(tmp_path, text)
    assert e.field == key and what in str(e)


def test_post_init_value_error_becomes_a_data_error_naming_the_block(tmp_path):
    e = _error(tmp_path, "inner: {rate: 2.0}\n")
    assert e.field == "inner" and "rate must be in [0, 1]" in str(e)


def test_overrides_apply_before_the_checks(tmp_path):
    p = _yaml(tmp_path, "steps: 3\ninner: {name: b}\n")
    cfg = load_yaml(Outer, p, ["steps=5", "inner.rate=0.75", "maybe={name: z}", "names=[q]"])
    assert cfg.steps == 5 and cfg.inner == Inner(0.75, "b") and cfg.maybe == Inner(0.5, "z") and cfg.names == ("q",)
    e = _error(tmp_path, "steps: 3\n", ["steps=1.5"])
    assert e.field == "steps"
    d: dict = {"a": 1}
    with pytest.raises(DataError, match="not a block"):
        apply_override(d, "a.b=2")
    with pytest.raises(DataError, match="key.sub=value"):
        apply_override(d, "no-equals-sign")


def test_read_yaml_rejects_what_is_not_a_mapping(tmp_path):
    with pytest.raises(DataError, match="must hold a mapping"):
        read_yaml(_yaml(tmp_path, "- a\n- b\n"))
    with pytest.raises(DataError, match="not valid YAML"):
        read_yaml(_yaml(tmp_path, "a: [1\n"))
    with pytest.raises(DataError, match="cannot read"):
        read_yaml(tmp_path / "missing.yaml")


def test_config_to_dict_round_trips_through_a_yaml_file(tmp_path):
    cfg = load_config(Outer, {"steps": 4, "names": ["a"], "maybe": {"rate": 0.1}})
    p = tmp_path / "dump.yaml"
    p.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    assert load_yaml(Outer, p) == cfg


# -- the configs that load through guienv.config ---------------------------------------------------
def test_train_config_checks_types_at_load_time(tmp_path):
    from guienv.run.train_config import TrainConfig

    default = REPO / "configs" / "train_default.yaml"
    for bad in ("train.steps=ten", "train.steps=1.5"):
        with pytest.raises(DataError) as e:
            TrainConfig.from_yaml(default, [bad])
        assert e.value.field == "train.steps" and "train_default.yaml" in str(e.value)
    cfg = TrainConfig.from_yaml(default, ["model.lora={r: 4}", "grpo.lr=1e-6"])
    assert cfg.model.lora.r == 4 and cfg.grpo.lr == 1e-6
    # the resolved config a run writes (DIR/config.yaml) loads back to the same config
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    assert TrainConfig.from_yaml(p) == cfg


def test_judge_and_hybrid_configs_name_nested_keys(tmp_path):
    from rewards.hybrid import HybridConfig
    from rewards.judge import JudgeConfig

    y = _yaml(tmp_path, "judge_mode: always\njudge: {model: m, timeout_s: soon}\n", "hybrid.yaml")
    with pytest.raises(DataError) as e:
        HybridConfig.from_yaml(y)
    assert e.value.field == "judge.timeout_s" and "hybrid.yaml" in str(e.value)
    j = _yaml(tmp_path, "judge: {model: m, max_retries: -1}\n", "judge.yaml")
    with pytest.raises(DataError) as e:
        JudgeConfig.from_yaml(j)
    assert e.value.field == "judge" and "retry counts" in str(e.value)


@dataclass
class _Resized:
    min_pixels: int = 3136
    max_pixels: int = 12544

    def __post_init__(self) -> None:
        check_pixel_range(self.min_pixels, self.max_pixels)


@dataclass
class _Outer:
    model: _Resized = field(default_factory=_Resized)


def test_check_pixel_range_names_the_option():
    check_pixel_range(0, 784)
    check_pixel_range(None, None)
    for lo, hi, key in ((0, 0, "max_pixels"), (-1, 1000, "min_pixels"), (5000, 4000, "min_pixels"), (1.5, 4000, "min_pixels")):
        with pytest.raises(ConfigValueError) as e:
            check_pixel_range(lo, hi)
        assert e.value.key == key
    with pytest.raises(ValueError, match="--max-pixels"):
        check_pixel_range(None, 0, ("--min-pixels", "--max-pixels"))


def test_a_range_error_in_a_nested_block_is_a_data_error_with_the_dotted_key(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"model": {"min_pixels": 9000, "max_pixels": 4000}}))
    with pytest.raises(DataError) as e:
        load_yaml(_Outer, f)
    assert e.value.field == "model.min_pixels" and str(f) in str(e.value) and "must not exceed max_pixels" in str(e.value)
    assert load_yaml(_Outer, f, ["model.min_pixels=100"]).model.min_pixels == 100
