"""The ACE-BERT network: query tower, product tower with raw-pixel image tokens, domain classifier.

Design (after arXiv 2112.07209, sized for a CPU):

* Query tower: a BERT over the query tokens, attention-masked mean pooling, optional linear
  projection to ``dim``, L2 normalisation.
* Product tower: one BERT over ``[CLS] title [SEP] image tokens`` fed through ``inputs_embeds``.
  Title tokens use the BERT's own word embeddings. Image tokens come straight from pixels (no
  pretrained CNN, so no ImageNet bias): *patch tokens* (the image cut into ``patch_size``
  squares, each flattened and linearly projected, ViT style) and *pixel tokens* (a low-res
  ``pixel_grid`` view of the image; each of its rows of RGB pixels is one token, which keeps
  colour layout at the cost of only ``rows`` tokens), and with ``colour_bins`` one *colour token*
  (a fixed histogram of the photo's non-background colours, linearly projected); with
  ``raw_image_tokens`` off, the colour token alone (no patch or pixel tokens). Each image
  token gets a learned position embedding and a learned modality embedding (text / patch /
  pixel); BERT then adds its own position (continuing after the title) and segment embeddings
  (segment 1 for image tokens).
  A product without an image gets a single learned "no image" token instead.
  The pooled vector is the mean over *all* unmasked tokens, title and image alike.
* Domain classifier: an MLP on the normalised vectors that predicts query (0) vs product (1);
  it is fed through a gradient reversal layer so the towers learn to make the two
  distributions indistinguishable (the "modality gap" the paper targets).
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from acebert.config import ModelConfig

TEXT, PATCH, PIXEL = 0, 1, 2
BACKGROUND_DISTANCE = 0.12  # a channel this far (of 1) from the border's mean colour is the product's


class GradientReversal(torch.autograd.Function):
    """Identity on the way forward; multiplies the gradient by ``-lambda`` on the way back."""

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor, strength: float) -> torch.Tensor:  # type: ignore[override]
        ctx.strength = strength
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.strength * grad_output, None


def reverse_gradient(inputs: torch.Tensor, strength: float) -> torch.Tensor:
    """Apply :class:`GradientReversal` with the given ``strength`` (lambda)."""
    return GradientReversal.apply(inputs, strength)


def dann_lambda(progress: float, lambda_max: float) -> float:
    """The DANN warm-up: ``lambda_max * (2 / (1 + exp(-10 p)) - 1)`` for progress ``p`` in [0, 1].

    Starting near 0 lets the matching loss shape the space before the adversary pushes on it.
    """
    progress = min(max(progress, 0.0), 1.0)
    return lambda_max * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where ``mask`` is 1."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def colour_histogram(images: torch.Tensor, bins: int) -> torch.Tensor:
    """Per image, the square root of the share of its foreground pixels in each of ``bins``^3 RGB cells.

    ``images``: ``(B, 3, H, W)`` in [-1, 1]; returns ``(B, bins**3)``, cell ``(r * bins + g) * bins + b``.
    Foreground is every pixel that differs from the photo's background, taken as the mean colour
    of its outermost pixels (studio shots are white or grey), by more than :data:`BACKGROUND_DISTANCE`
    in some channel; so a small red bag on a grey sheet reads as red, not as mostly grey. The
    square root lets a second colour of a few percent still register. A photo that is all
    background gives zeros, which the projection maps to one learned vector of its own. No
    gradient flows to the pixels: the histogram is a fixed feature, only its projection learns.
    Counted with ``scatter_add`` (ONNX ``ScatterElements`` with ``add``, opset 16+), which traces with
    a dynamic batch and touches each pixel once: a one-hot over the cells did the same sums 26x
    slower at 4 bins and 170x at 8 (docs/acebert.md), and cost the int8 ONNX tower ~19% of its speed.
    """
    pixels = (images.detach() + 1) / 2
    border = torch.cat([pixels[:, :, 0], pixels[:, :, -1], pixels[:, :, :, 0], pixels[:, :, :, -1]], dim=2)
    background = border.mean(2)[:, :, None, None]  # B, 3, 1, 1
    foreground = ((pixels - background).abs().amax(1) > BACKGROUND_DISTANCE).flatten(1).to(images.dtype)
    cells = (pixels * bins).long().clamp(0, bins - 1)  # B, 3, H, W
    index = ((cells[:, 0] * bins + cells[:, 1]) * bins + cells[:, 2]).flatten(1)  # B, HW
    counts = foreground.new_zeros((images.shape[0], bins**3)).scatter_add(1, index, foreground)  # B, bins^3
    return (counts / counts.sum(1, keepdim=True).clamp(min=1.0)).sqrt()


class ImageTokens(nn.Module):
    """Turns a batch of images into patch and pixel-row token embeddings (plus the no-image token)."""

    def __init__(self, config: ModelConfig, hidden: int) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.pixel_grid = config.pixel_grid
        raw = config.raw_image_tokens
        self.patch_proj = nn.Linear(3 * config.patch_size**2, hidden) if raw else None
        self.pixel_proj = nn.Linear(3 * config.pixel_grid[1], hidden) if raw else None
        self.colour_bins = config.colour_bins
        self.colour_proj = nn.Linear(config.colour_bins**3, hidden) if config.colour_bins else None
        self.positions = nn.Parameter(torch.randn(config.n_image_tokens, hidden) * 0.02)
        self.modality = nn.Embedding(3, hidden)
        self.no_image = nn.Parameter(torch.randn(hidden) * 0.02)
        with torch.no_grad():
            self.modality.weight.normal_(0.0, 0.02)
            self.modality.weight[TEXT].zero_()  # the title path starts exactly as pretrained

    def text_modality(self) -> torch.Tensor:
        return self.modality.weight[TEXT]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: ``(B, 3, H, W)`` in [-1, 1]; returns ``(B, n_image_tokens, hidden)``."""
        parts = self._raw_tokens(images) if self.patch_proj is not None else []
        if self.colour_proj is not None:  # a pixel-derived token: it shares the pixel rows' modality
            colours = self.colour_proj(colour_histogram(images, self.colour_bins))
            parts.append((colours + self.modality.weight[PIXEL])[:, None])
        return torch.cat(parts, dim=1) + self.positions

    def _raw_tokens(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The patch tokens and the pixel-row tokens."""
        batch = images.shape[0]
        size = self.patch_size
        patches = images.unfold(2, size, size).unfold(3, size, size)  # B, 3, nh, nw, p, p
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(batch, -1, 3 * size * size)
        rows = F.adaptive_avg_pool2d(images, self.pixel_grid)  # B, 3, gh, gw
        rows = rows.permute(0, 2, 3, 1).reshape(batch, self.pixel_grid[0], -1)
        return [self.patch_proj(patches) + self.modality.weight[PATCH],
                self.pixel_proj(rows) + self.modality.weight[PIXEL]]


class AceBert(nn.Module):
    """Two towers (or one shared BERT) plus the adversarial domain classifier."""

    def __init__(self, config: ModelConfig, backbone: nn.Module) -> None:
        """``backbone`` is a pooler-less ``BertModel``; it is copied for the product tower unless shared."""
        super().__init__()
        self.config = config
        hidden = backbone.config.hidden_size
        self.query_bert = backbone
        self.product_bert = None if config.shared_towers else copy.deepcopy(backbone)
        if self.product_bert is not None and config.product_layers is not None:
            keep_first_layers(self.product_bert, config.product_layers)
        self.query_proj = nn.Linear(hidden, config.dim) if config.dim != hidden else nn.Identity()
        self.product_proj = None if config.shared_towers else copy.deepcopy(self.query_proj)
        self.image_tokens = ImageTokens(config, hidden) if config.use_image else None
        self.domain_classifier = nn.Sequential(
            nn.Linear(config.dim, config.domain_hidden), nn.ReLU(), nn.Linear(config.domain_hidden, 1)
        )

    @classmethod
    def from_backbone_path(cls, config: ModelConfig, path: str | Path) -> "AceBert":
        """Start from pretrained BERT weights (the MiniLM directory) for both towers."""
        from transformers import AutoModel

        with _quiet_transformers():
            backbone = AutoModel.from_pretrained(str(path), add_pooling_layer=False, local_files_only=True)
        return cls(config, backbone)

    @classmethod
    def from_backbone_config(cls, config: ModelConfig, backbone_config: dict[str, Any]) -> "AceBert":
        """Build an untrained network of the right shape (weights are loaded afterwards)."""
        from transformers import AutoModel, BertConfig

        with _quiet_transformers():
            backbone = AutoModel.from_config(BertConfig.from_dict(backbone_config), add_pooling_layer=False)
        return cls(config, backbone)

    @property
    def _product_bert(self) -> nn.Module:
        return self.product_bert if self.product_bert is not None else self.query_bert

    @property
    def _product_proj(self) -> nn.Module:
        return self.product_proj if self.product_proj is not None else self.query_proj

    def encode_queries(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """L2-normalised query vectors ``(B, dim)``."""
        hidden = self.query_bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(self.query_proj(mean_pool(hidden, attention_mask)), dim=-1)

    def encode_products(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        images: torch.Tensor,
        has_image: torch.Tensor,
    ) -> torch.Tensor:
        """L2-normalised product vectors ``(B, dim)`` from title ids and images.

        ``images`` is ``(B, 3, H, W)`` in [-1, 1] (any values where ``has_image`` is False);
        with ``use_image`` off both are ignored and the tower sees the title only.
        """
        bert = self._product_bert
        embeds = bert.embeddings.word_embeddings(input_ids)
        mask = attention_mask
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        segments = torch.zeros_like(input_ids)
        if self.image_tokens is not None:
            embeds = embeds + self.image_tokens.text_modality()
            image_embeds, image_mask = _image_part(self.image_tokens, images, has_image, embeds.dtype)
            title_lengths = attention_mask.sum(1, keepdim=True)
            # image positions continue right after each row's own [SEP], so padding inside the
            # batch never changes a product's vector
            image_positions = title_lengths + torch.arange(image_embeds.shape[1], device=input_ids.device)
            embeds = torch.cat([embeds, image_embeds], dim=1)
            mask = torch.cat([attention_mask, image_mask], dim=1)
            positions = torch.cat([positions, image_positions], dim=1)
            segments = torch.cat([segments, torch.ones_like(image_mask)], dim=1)
        hidden = bert(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, token_type_ids=segments
        ).last_hidden_state
        return F.normalize(self._product_proj(mean_pool(hidden, mask)), dim=-1)

    def domain_logits(self, vectors: torch.Tensor, reversal: float | None = None) -> torch.Tensor:
        """Domain classifier logits (> 0 means "product"); ``reversal`` inserts the GRL with that lambda."""
        if reversal is not None:
            vectors = reverse_gradient(vectors, reversal)
        return self.domain_classifier(vectors).squeeze(-1)


def keep_first_layers(bert: nn.Module, layers: int) -> None:
    """Cut ``bert`` to its first ``layers`` transformer layers (a copy's own config says so too)."""
    available = len(bert.encoder.layer)
    if layers > available:
        raise ValueError(f"product_layers = {layers}, but the backbone has {available} layers")
    keep_layers(bert, range(layers))


def keep_layers(bert: nn.Module, indices: Sequence[int]) -> None:
    """Keep only the transformer layers at ``indices``, in that order; a saved copy loads as the first
    ``len(indices)`` layers of its backbone with these weights, so only their number is recorded."""
    layers = list(bert.encoder.layer)
    bert.encoder.layer = nn.ModuleList(layers[i] for i in indices)
    bert.config.num_hidden_layers = len(indices)


def _image_part(
    image_tokens: ImageTokens, images: torch.Tensor, has_image: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image token embeddings and their mask; image-less rows get one "no image" token."""
    batch = images.shape[0]
    no_image = image_tokens.no_image.to(dtype)
    if not bool(has_image.any()):  # whole batch image-less: a one-token tail is enough
        return no_image.expand(batch, 1, -1), has_image.new_ones((batch, 1), dtype=torch.long)
    tokens = image_tokens(images.to(dtype))
    first = torch.where(has_image[:, None], tokens[:, 0], no_image)
    tokens = torch.cat([first[:, None], tokens[:, 1:]], dim=1)
    # slot 0 is always attended (image token or "no image"), the rest only with an image; built
    # by broadcasting, not slice assignment, so a traced/exported graph keeps a dynamic batch
    is_first = torch.arange(tokens.shape[1], device=tokens.device) == 0
    return tokens, (has_image[:, None] | is_first).long()


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bar (it lists the pooler weights we drop)."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bar_was_on:
            hf_logging.enable_progress_bar()
