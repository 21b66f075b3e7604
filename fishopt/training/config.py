"""Compose the training configuration with Hydra's compose API and validate it against one schema per group.

The YAML files under ``fishopt/training/conf/`` hold the defaults (with comments); the schemas below say
what each key may hold. :func:`compose_config` checks the composed config before anything is written, so a
bad type, an out-of-range value or an unknown key (with or without Hydra's ``+``) is one :class:`ConfigError`
naming the key, the bad value and what is allowed.

Adding a group or a model: write its YAML, then a schema (a :class:`GroupSchema` subclass) registered with
:func:`register_group_schema` (``register_group_schema("distill")(DistillSchema)``) or, for a model of the
``model`` group, :func:`register_model_schema` under the model's registry name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fishopt.errors import ConfigError
from fishopt.models import list_models, model_info

CONFIG_MODULE = "fishopt.training.conf"

PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Size = Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
Three = Annotated[list[PositiveInt], Field(min_length=3, max_length=3)]


class GroupSchema(BaseModel):
    """Base of every group's schema: strict types (no string-to-number conversion), no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TopSchema(GroupSchema):
    """Top-level keys of ``config.yaml`` (besides the groups)."""

    seed: int
    out_dir: str
    run_name: str | None = Field(default=None, min_length=1)


class DataSchema(GroupSchema):
    """``data`` (``conf/data/fish.yaml``)."""

    root: str | None
    groups_file: str | None
    group_by: Literal["cluster", "group"]
    leaky_split: bool
    fractions: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=3, max_length=3)]
    split_seed: int
    split_file: str | None
    load_size: Size | None = Field(description="expected two integers [H, W] >= 1, or null (the model's own)")
    input_size: Size | None = Field(description="expected two integers [H, W] >= 1, or null (the model's own)")
    cache_dir: str | None
    batch_size: PositiveInt
    limit_per_class: PositiveInt | None = Field(description="expected a number of images >= 1, or null (all)")

    @model_validator(mode="after")
    def _fits(self) -> DataSchema:
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise ValueError(f"data.fractions={self.fractions} must add up to 1 (train, val, test)")
        if (
            self.input_size
            and self.load_size
            and any(i > s for i, s in zip(self.input_size, self.load_size, strict=True))
        ):
            raise ValueError(
                f"data.input_size={self.input_size} must fit inside data.load_size={self.load_size} "
                "(it is a center crop of the loaded image)"
            )
        return self


class AugmentSchema(GroupSchema):
    """``augment`` (``conf/augment/default.yaml``, ``none.yaml``)."""

    rotate: Annotated[float, Field(ge=0, le=180)]
    hflip: Probability
    vflip: Probability
    scale: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)]
    translate: Annotated[float, Field(ge=0, lt=1)]
    brightness: NonNegative
    contrast: NonNegative
    saturation: NonNegative
    hue: Annotated[float, Field(ge=0, le=0.5)]
    p_color: Probability
    blur: Probability
    grayscale: Probability
    erase: Probability

    @model_validator(mode="after")
    def _ordered(self) -> AugmentSchema:
        if self.scale[0] > self.scale[1]:
            raise ValueError(f"augment.scale={self.scale} must be [low, high] with low <= high")
        return self


class TrainerSchema(GroupSchema):
    """``trainer`` (``conf/trainer/default.yaml``). ``accelerator``, ``strategy``, ``devices`` and ``precision``
    are Lightning's own settings: their values are checked by Lightning before the run folder is made."""

    max_epochs: PositiveInt
    optimizer: Literal["adamw", "sgd"]
    lr: Annotated[float, Field(gt=0)]
    momentum: Annotated[float, Field(ge=0, lt=1)]
    weight_decay: NonNegative
    label_smoothing: Annotated[float, Field(ge=0, lt=1)]
    warmup_epochs: NonNegative
    mixup: NonNegative
    cutmix: NonNegative
    mix_prob: Probability
    ema_decay: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        description="expected a decay in (0, 1), or null (off)"
    )
    refit: bool
    patience: Annotated[int, Field(ge=0)]
    accelerator: Annotated[str, Field(min_length=1)]
    devices: (
        PositiveInt
        | Literal[-1, "auto"]
        | Annotated[str, Field(pattern=r"^\s*-?\d+(\s*,\s*\d+)*\s*,?\s*$")]
        | list[Annotated[int, Field(ge=0)]]
    ) = Field(
        description="expected a number of devices >= 1, -1 (all), 'auto', a list of device ids like [0,1] or '0,1'"
    )
    strategy: Annotated[str, Field(min_length=1)]
    precision: Annotated[str, Field(min_length=1)] | Literal[16, 32, 64] = Field(
        description="expected one of Lightning's precisions, e.g. 32-true, 16-mixed, bf16-mixed"
    )
    threads: PositiveInt | None = Field(description="expected a number of threads >= 1, or null (all cores)")
    logger: Literal["csv", "tensorboard", "wandb"]
    progress_bar: bool
    limit_train_batches: PositiveInt | Annotated[float, Field(gt=0, le=1)] | None = Field(
        description="expected a number of batches >= 1, a fraction in (0, 1], or null (all)"
    )
    backbone_lr: Annotated[float, Field(gt=0, le=1)] = Field(
        default=1.0, description="expected the backbone's fraction of the learning rate, in (0, 1]"
    )
    feature_views: Literal["center", "flips"] = "center"


class BaselineModelSchema(GroupSchema):
    """``model`` = ``baseline`` (``conf/model/baseline.yaml``; see :class:`fishopt.models.baseline.BaselineConfig`)."""

    name: Literal["baseline"]
    width: PositiveInt
    widths: Three | None = Field(description="expected three positive integers like [32,64,128], or null (from width)")
    kernels: Three
    strides: Three
    pool: Literal["max", "avg", "none"]
    head_pool: PositiveInt
    hidden: PositiveInt
    dropout: Annotated[float, Field(ge=0, lt=1)]


class EfficientNetLiteModelSchema(GroupSchema):
    """``model`` = ``efficientnet_lite0`` (``conf/model/efficientnet_lite0*.yaml``; see
    :class:`fishopt.models.efficientnet.EfficientNetLiteConfig`)."""

    name: Literal["efficientnet_lite0"]
    pretrained: bool
    image_size: Size | None = Field(description="expected two integers [H, W], or null (data.input_size)")
    dropout: Annotated[float, Field(ge=0, lt=1)]
    drop_connect: Annotated[float, Field(ge=0, lt=1)]
    width: Annotated[float, Field(gt=0)]
    depth: Annotated[float, Field(gt=0)]
    freeze_backbone: bool


class DistillSchema(GroupSchema):
    """``distill`` (``conf/distill/default.yaml``; see :class:`fishopt.training.distill.DistillConfig`)."""

    teacher: Annotated[str, Field(min_length=1)] | None = Field(
        description="expected the path of the teacher's model.pt, 'auto' (find or train the default teacher), or null"
    )
    alpha: Probability
    temperature: Annotated[float, Field(gt=0)]
    runtime: Literal["auto", "torch", "openvino"]
    teacher_view: Literal["student", "native"]


#: group -> schema; the ``model`` group is checked by :data:`MODEL_SCHEMAS` (by ``model.name``).
GROUP_SCHEMAS: dict[str, type[GroupSchema]] = {
    "data": DataSchema,
    "augment": AugmentSchema,
    "trainer": TrainerSchema,
    "distill": DistillSchema,
}
MODEL_SCHEMAS: dict[str, type[GroupSchema]] = {
    "baseline": BaselineModelSchema,
    "efficientnet_lite0": EfficientNetLiteModelSchema,
}

S = TypeVar("S", bound=type[GroupSchema])


def register_group_schema(group: str) -> Callable[[S], S]:
    """Class decorator: the schema of config group ``group`` (a folder of ``conf/``)."""

    def add(schema: S) -> S:
        GROUP_SCHEMAS[group] = schema
        return schema

    return add


def register_model_schema(name: str) -> Callable[[S], S]:
    """Class decorator: the schema of the ``model`` group when ``model.name`` is ``name``."""

    def add(schema: S) -> S:
        MODEL_SCHEMAS[name] = schema
        return schema

    return add


def groups() -> list[str]:
    """The config groups (folders of ``conf/``)."""
    from importlib.resources import files

    root = files(CONFIG_MODULE)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def compose_config(overrides: Sequence[str] = ()):
    """Compose ``config.yaml`` with Hydra overrides such as ``trainer.max_epochs=30``, then validate it.

    Returns:
        An OmegaConf ``DictConfig`` in struct mode.

    Raises:
        ConfigError: If an override is malformed or names an unknown group option, or the composed config
            breaks its schema (bad type or value, unknown key with or without ``+``): names the key, the
            value and what is allowed.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name="config", overrides=_as_force_add(list(overrides)))
    except (HydraException, OmegaConfBaseException) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(
            f"bad training override in {list(overrides)}: {detail}. Keys look like trainer.max_epochs=30 or "
            f"model.width=48; groups: {', '.join(groups())} (select an option with e.g. augment=none)"
        ) from exc
    finally:
        GlobalHydra.instance().clear()
    validate_config(to_dict(cfg))
    return cfg


def _as_force_add(overrides: list[str]) -> list[str]:
    """Turn every key override into Hydra's ``++key=value`` (set, or add when unknown).

    Without ``+`` Hydra refuses an unknown key with advice to add ``+``, and with ``+`` it accepts a typo and
    ignores it. As ``++`` both reach the composed config, where :func:`validate_config` refuses unknown keys the
    same way, listing the valid ones. Group selections (``augment=none``, ``+group=option``) and deletions
    (``~key``) stay as they are.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return overrides  # compose reports the syntax error
    group_names = set(groups())
    out = []
    for raw, override in zip(overrides, parsed, strict=True):
        if override.key_or_group in group_names and not override.is_delete():
            _check_option(override.key_or_group, override.value())
        if override.is_delete() or override.key_or_group in group_names or override.package is not None:
            out.append(raw)
        else:
            out.append("++" + raw.lstrip("+"))
    return out


def group_options(group: str) -> list[str]:
    """The options of a config group (its YAML files)."""
    from importlib.resources import files

    folder = files(CONFIG_MODULE) / group
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _check_option(group: str, value: object) -> None:
    options = group_options(group)
    if not isinstance(value, str) or value not in options:
        closest = _closest_first(str(value), options)
        raise ConfigError(
            f"unknown {group} option {value!r} in {group}={value}; valid choices (closest first): {', '.join(closest)}"
        )


def validate_config(cfg: dict[str, Any]) -> None:
    """Check a composed config (plain containers) against the schemas of its groups.

    Raises:
        ConfigError: Listing every problem: the key, its value and what is allowed; for an unknown key, the
            valid keys of its group, closest match first.
    """
    problems: list[str] = []
    if not isinstance(cfg, dict):
        raise ConfigError(f"the training config must be a mapping, got {type(cfg).__name__}")
    top = {k: v for k, v in cfg.items() if k not in GROUP_SCHEMAS and k != "model"}
    problems += _check(TopSchema, top, "", extra_valid=[*GROUP_SCHEMAS, "model"])
    for group, schema in GROUP_SCHEMAS.items():
        problems += _check_group(cfg, group, schema)
    model = cfg.get("model")
    if isinstance(model, dict) and model.get("name") not in MODEL_SCHEMAS:
        problems.append(
            f"model.name={model.get('name')!r} has no schema; valid models: {', '.join(sorted(MODEL_SCHEMAS))}"
        )
    elif isinstance(model, dict):
        problems += _check_group(cfg, "model", MODEL_SCHEMAS[model["name"]])
        problems += _check_sizes(cfg)
    else:
        problems.append("the config has no model group; add model=baseline")
    if problems:
        raise ConfigError("invalid training config: " + "; ".join(problems))


def _check_sizes(cfg: dict[str, Any]) -> list[str]:
    """The input size fits inside the load size, each taken from the data group or else from the model's defaults."""

    data, name = cfg.get("data"), cfg["model"].get("name")
    if not isinstance(data, dict) or name not in list_models():
        return []
    info = model_info(name)
    load, size = data.get("load_size") or list(info.load_size), data.get("input_size") or list(info.input_size)
    if not (isinstance(load, list) and isinstance(size, list) and len(load) == len(size) == 2):
        return []
    if any(not isinstance(v, int) for v in (*load, *size)) or all(i <= s for i, s in zip(size, load, strict=True)):
        return []
    if data.get("input_size") and data.get("load_size"):
        return []  # the data schema reports it
    return [
        f"data.input_size={size} must fit inside data.load_size={load} (it is a center crop of the loaded image; "
        f"{name} loads at {list(info.load_size)} and takes {list(info.input_size)} by default)"
    ]


def _check_group(cfg: dict[str, Any], group: str, schema: type[GroupSchema]) -> list[str]:
    value = cfg.get(group)
    if not isinstance(value, dict):
        return [f"{group} must be a group of keys, got {value!r}"]
    return _check(schema, value, f"{group}.")


def _check(
    schema: type[GroupSchema], values: dict[str, Any], prefix: str, extra_valid: Sequence[str] = ()
) -> list[str]:
    try:
        schema.model_validate(values)
    except ValidationError as exc:
        return _describe(exc, schema, values, prefix, extra_valid)
    return []


def _describe(
    exc: ValidationError, schema: type[GroupSchema], values: dict[str, Any], prefix: str, extra_valid: Sequence[str]
) -> list[str]:
    valid = [*schema.model_fields, *extra_valid]
    where = f"of {prefix.rstrip('.')}" if prefix else "at the top level"
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        key = str(err["loc"][0]) if err["loc"] else ""
        full = prefix + ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            closest = _closest_first(key, valid)
            out[full] = f"unknown key {full}; valid keys {where} (closest first): {', '.join(closest)}"
        elif err["type"] == "missing":
            out[full] = f"{full} is missing; set it, e.g. {full}=VALUE"
        elif not err["loc"]:  # a cross-field check
            out[full or prefix] = err["msg"].removeprefix("Value error, ")
        elif key not in out:  # a union reports each alternative: its field's description says them all
            field = schema.model_fields.get(key)
            allowed = field.description if field is not None and field.description else _allowed(err)
            out[key] = f"{prefix}{key}={values.get(key)!r} is not valid: {allowed}"
    return list(out.values())


def _allowed(err: dict[str, Any]) -> str:
    """Pydantic's account of what a key allows, in fishopt's words."""
    message = err["msg"].removeprefix("Value error, ").replace("Input should be", "expected")
    for long, short in _WORDS:
        message = message.replace(long, short)
    return message[0].lower() + message[1:]


_WORDS = (
    ("greater than or equal to ", ">= "),
    ("less than or equal to ", "<= "),
    ("greater than ", "> "),
    ("less than ", "< "),
    ("a valid integer", "an integer"),
    ("a valid number", "a number"),
    ("a valid boolean", "true or false"),
    ("a valid list", "a list"),
    ("a valid string", "a string"),
    (", unable to parse string as an integer", ""),
    (" after validation", ""),
)


def _closest_first(key: str, valid: Sequence[str]) -> list[str]:
    """``valid`` ordered by similarity to ``key`` (most similar first)."""
    return sorted(valid, key=lambda v: (-difflib.SequenceMatcher(None, key, v).ratio(), v))


def to_dict(cfg) -> dict:
    """Resolve a DictConfig to plain containers."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
