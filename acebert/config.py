"""Typed configuration for the ACE-BERT model and its training runs.

A run is described by one file (TOML or YAML) with two sections, ``[model]`` (what gets saved
with the checkpoint and is needed to rebuild the network) and ``[train]`` (how it was trained).
Both are pydantic models that forbid unknown keys, so a typo fails at load time with the
offending key and the valid ones named, instead of silently training with a default.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = "../shared/data/fashion"


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key."""


class ModelConfig(BaseModel):
    """Architecture of the two towers; stored in every checkpoint's ``config.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(384, gt=0, description="output vector size; a projection is added if != hidden size")
    max_query_len: int = Field(32, gt=2)
    max_title_len: int = Field(48, gt=2)
    use_image: bool = True
    # False here means what an absent key meant before the option existed, so older checkpoints load
    # as they were trained; the project's training configs (configs/acebert.toml, the defaults of
    # ``hybrid-search train``) turn it on: it won over 3 seeds (docs/acebert.md).
    use_category: bool = Field(
        False, description="the product tower also reads the category path, after the title and a [SEP]"
    )
    shared_towers: bool = False
    # The product tower's cost grows with its layers, and products are encoded far more often than they
    # change (issue #14): the first n backbone layers only, the query tower keeping all of them.
    product_layers: int | None = Field(
        None, gt=0, description="the product tower keeps the backbone's first n layers; None: all of them"
    )
    image_size: tuple[int, int] = (80, 60)  # (height, width): the catalogue's photos are 60x80 WxH
    patch_size: int = Field(20, gt=0)
    pixel_grid: tuple[int, int] = (8, 6)  # (rows, cols) of the low-res view; one token per row
    # One more image token: the share of the photo's non-background pixels in each of n x n x n RGB
    # cells (acebert.model.colour_histogram). Pixel rows average the product with its white background,
    # so colour must be decoded; a histogram puts it one linear map from the tower (issue #11).
    colour_bins: int = Field(0, ge=0, le=8, description="0: no colour token; n: a histogram over n^3 RGB cells")
    # False: the photo is its colour token alone, without the patch and pixel-row tokens, so the product
    # tower reads one image token instead of 21 (issue #14: the image tail is most of its encoding cost).
    raw_image_tokens: bool = Field(True, description="patch and pixel-row tokens besides the colour token")
    domain_hidden: int = Field(256, gt=0)

    @model_validator(mode="after")
    def _patches_tile_the_image(self) -> "ModelConfig":
        height, width = self.image_size
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}"
            )
        if self.pixel_grid[0] > height or self.pixel_grid[1] > width:
            raise ValueError(f"pixel_grid {self.pixel_grid} is larger than image_size {self.image_size}")
        if self.use_image and not self.raw_image_tokens and not self.colour_bins:
            raise ValueError("raw_image_tokens = false leaves the photo only its colour token: set colour_bins > 0 "
                             "(or use_image = false)")
        if self.shared_towers and self.product_layers is not None:
            raise ValueError("product_layers needs two towers: set shared_towers = false (or drop product_layers)")
        return self

    @property
    def n_patch_tokens(self) -> int:
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)

    @property
    def n_image_tokens(self) -> int:
        """Image tokens appended after the title when a product has an image."""
        raw = self.n_patch_tokens + self.pixel_grid[0] if self.raw_image_tokens else 0
        return raw + (1 if self.colour_bins else 0)


class TrainConfig(BaseModel):
    """Data, optimisation and bookkeeping of one training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: str = DEFAULT_DATA_DIR
    train_queries: str = "queries_train.tsv"  # relative paths are taken inside data_dir
    train_qrels: str = "qrels_train.tsv"
    dev_queries: str = "queries_dev.tsv"
    dev_qrels: str = "qrels_dev.tsv"
    output_dir: str = "~/.cache/acebert-search/checkpoints/acebert-default"
    seed: int = 13
    epochs: int = Field(2, gt=0)
    batch_size: int = Field(32, gt=1)
    lr: float = Field(5e-5, gt=0, description="learning rate of the pretrained BERT weights")
    head_lr: float = Field(5e-4, gt=0, description="learning rate of new modules (image tokens, heads)")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    temperature: float = Field(0.05, gt=0)
    learn_temperature: bool = False
    adversarial: bool = False  # the GRL widened the query/product gap at lambda 1 (docs/acebert.md)
    lambda_max: float = Field(1.0, ge=0, description="peak gradient-reversal strength")
    domain_loss_weight: float = Field(1.0, ge=0)
    max_positives_per_query: int | None = Field(8, gt=0)
    hard_negatives: int = Field(0, ge=0, description="hard negatives added per query to each batch")
    hard_negative_source: Literal["grade1", "bm25"] = Field(
        "grade1", description="pool of hard negatives: the query's grade-1 products, or BM25's top non-positives"
    )
    bm25_negative_depth: int = Field(50, gt=0, description="size of each query's BM25 pool")
    grade1_weight: float = Field(
        0.0, ge=0, description="graded loss: weight of ranking each in-batch grade-1 product above the non-relevant "
        "ones (0: grade 1 is a plain negative)"
    )
    max_train_pairs: int | None = Field(None, gt=0)
    max_products: int | None = Field(
        None, gt=0, description="small runs: keep only the first N catalogue products that are train positives"
    )
    # Both dropouts make the image necessary (issue #11): a title that names the product lets the
    # tower ignore its photo. They change training examples only, never what serving encodes.
    title_word_dropout: float = Field(
        0.0, ge=0, lt=1, description="training only: probability of dropping each title word"
    )
    title_dropout: float = Field(
        0.0, ge=0, lt=1, description="training only: probability of dropping the whole title of a product with an image"
    )
    # Image-title alignment (issue #11): a second in-batch softmax in each step, the query tower's vector of a
    # catalogue product's title against the product tower's vector of the same product without its title
    # (image and category only). Titles name the colour, the type and the brand, so the photo has to learn
    # to show them: the signal the query-product pairs lack, since there the title already says it all.
    image_title_weight: float = Field(
        0.0, ge=0, description="weight of the image-title alignment loss (0: off, nothing drawn)"
    )
    image_title_share: float = Field(
        1.0, gt=0, le=1, description="share of the products with an image whose titles train the alignment, by a "
        "stable hash of the product id; the rest stay held out (see acebert.pairs.in_share)"
    )
    image_title_epochs: int | None = Field(
        None, gt=0, description="train the alignment in the first N epochs only, so the last ones tune for queries "
        "alone (None: every epoch)"
    )
    # Title-span matching: a third in-batch softmax in each step, the query tower's vector of a few consecutive words
    # of a catalogue title against the product tower's vector of the whole product. The judged training queries
    # name colours, genders and kinds only, so without it the towers learn to ignore every other title word (brands,
    # lines, materials) that the base model read; shoppers type those too.
    title_span_weight: float = Field(
        0.0, ge=0, description="weight of the title-span matching loss (0: off, nothing drawn)"
    )
    title_span_words: int = Field(3, gt=0, description="longest title span drawn, in words")
    # The backbones' embeddings and first N transformer layers keep their pretrained weights: no weight gradients
    # for them. At 3 of 6 layers, training on the 500-product sample ran 1.3-1.5x faster on a 2-core CPU and lost
    # 0.03 held-out nDCG@10 in both seeds tried, so the default trains everything (docs/acebert.md, "Frozen lower
    # layers").
    frozen_layers: int = Field(
        0, ge=0, description="keep both backbones' embeddings and first N layers at their pretrained weights "
        "(0: train everything)"
    )
    eval_each_epoch: bool = True
    threads: int = Field(2, gt=0)
    device: str = "auto"

    def resolve(self, name: str) -> Path:
        """A data file path: absolute as given, else inside ``data_dir``."""
        path = Path(name).expanduser()
        return path if path.is_absolute() else self.data_path / path

    @property
    def data_path(self) -> Path:
        """``data_dir`` with relative values taken from the repository root."""
        path = Path(self.data_dir).expanduser()
        return path if path.is_absolute() else (REPO_ROOT / path).resolve()

    @property
    def output_path(self) -> Path:
        path = Path(self.output_dir).expanduser()
        return path if path.is_absolute() else (REPO_ROOT / path).resolve()


class RunConfig(BaseModel):
    """A whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.suffix == ".toml":
        with path.open("rb") as handle:
            return tomllib.load(handle)
    if path.suffix in (".yaml", ".yml"):
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        return loaded
    raise ConfigError(f"{path}: unsupported config format {path.suffix!r} (use .toml or .yaml)")


def _parse_value(text: str) -> Any:
    """An override value read as a TOML literal (``2``, ``false``, ``[80, 60]``), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return ``raw`` with ``section.key=value`` overrides applied (input left untouched)."""
    merged = {section: dict(values) for section, values in raw.items() if isinstance(values, dict)}
    merged.update({k: v for k, v in raw.items() if not isinstance(v, dict)})
    sections = RunConfig.model_fields
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, field = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"override {item!r} must look like section.key=value, e.g. train.epochs=2")
        if section not in sections:
            raise ConfigError(f"override {item!r}: unknown section {section!r}; valid: {sorted(sections)}")
        merged.setdefault(section, {})[field] = _parse_value(value.strip())
    return merged


def _explain(error: ValidationError, source: str) -> ConfigError:
    """Turn pydantic's error list into one message naming each bad key and the valid keys."""
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            section = item["loc"][0] if len(item["loc"]) > 1 else None
            valid = (
                sorted(RunConfig.model_fields[section].annotation.model_fields)  # type: ignore[union-attr]
                if section in RunConfig.model_fields
                else sorted(RunConfig.model_fields)
            )
            lines.append(f"unknown key {location!r}; valid keys here: {', '.join(valid)}")
        else:
            lines.append(f"{location}: {item['msg']}")
    return ConfigError(f"invalid config {source}:\n  " + "\n  ".join(lines))


def build_config(raw: dict[str, Any], source: str = "<dict>") -> RunConfig:
    """Validate a raw mapping into a :class:`RunConfig`, raising :class:`ConfigError`."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise _explain(error, source) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a TOML/YAML run config and apply ``section.key=value`` overrides."""
    path = Path(path)
    return build_config(apply_overrides(_read_file(path), overrides), str(path))
