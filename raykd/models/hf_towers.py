"""HuggingFace text towers (`huggingface`: AutoModel + a pooler) and sentence-transformers (`sbert`).

Poolers (`model.text.pooler`):
    cls                the model's pooler output ([CLS] through its dense+tanh layer)
    cls_before_pooler  the last hidden state of the first token
    mean               the mean of the last hidden states over real (unpadded) tokens
    PromptBERT         the hidden state of [MASK] in a prompt template, minus the same template's
                       [MASK] state with an empty sentence whose later positions are shifted by the
                       sentence length: template denoising (Jiang et al., "PromptBERT", EMNLP 2022)
    logits             the logits of a sequence-classification model (AutoModelForSequenceClassification)
Every tokenizer pads to `max_seq_length` so batches stack into fixed-shape int64 arrays.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from raykd.config.schema import TowerConfig
from raykd.models._registry import Tower, TowerDescription, enable_grad_checkpointing, register_tower, unavailable
from raykd.models.adapters import add_adapter, adapter_config
from raykd.models.local_models import resolve_model_path

POOLERS = ("cls", "cls_before_pooler", "mean", "PromptBERT", "logits")
# PromptBERT's best templates (Table 1 of the paper): BERT-style and RoBERTa-style tokenizers.
BERT_TEMPLATE = 'This sentence : "{sentence}" means {mask} .'
ROBERTA_TEMPLATE = "This sentence : '{sentence}' means {mask} ."


def _load_tokenizer(name_or_path: str, cache_dir: str = ""):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path, cache_dir=cache_dir or None)


class HFTokenizer:
    """Picklable wrapper: fixed-length padding so batches stack into arrays inside Ray Data."""

    def __init__(self, name_or_path: str, max_length: int, cache_dir: str = ""):
        self.name_or_path, self.max_length, self.cache_dir = name_or_path, max_length, cache_dir
        self._tok = None

    def __getstate__(self):
        return {**self.__dict__, "_tok": None}

    @property
    def tok(self):
        if self._tok is None:
            self._tok = _load_tokenizer(self.name_or_path, self.cache_dir)
        return self._tok

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        out = self.tok(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                       return_tensors="np")
        return {"input_ids": out["input_ids"].astype(np.int64),
                "attention_mask": out["attention_mask"].astype(np.int64)}


def check_template(template: str) -> None:
    """ValueError unless `template` holds one '{sentence}' and one '{mask}'."""
    if template.count("{sentence}") != 1 or template.count("{mask}") != 1:
        raise ValueError(f"model.text.prompt_template needs one '{{sentence}}' and one '{{mask}}': {template!r}")


def prompt_parts(tok, template: str = "") -> tuple[list[int], list[int], list[int], int]:
    """(prefix ids, suffix ids, the full template's ids with special tokens, sentence slot index).

    `template` holds '{sentence}' and '{mask}'; '' picks PromptBERT's template for the tokenizer style."""
    template = template or (ROBERTA_TEMPLATE if tok.mask_token == "<mask>" else BERT_TEMPLATE)
    check_template(template)
    prefix, suffix = (tok(part.replace("{mask}", tok.mask_token), add_special_tokens=False)["input_ids"]
                      for part in template.split("{sentence}"))
    lead = tok.build_inputs_with_special_tokens([-1]).index(-1)  # special tokens before the text ([CLS], <s>)
    return prefix, suffix, tok.build_inputs_with_special_tokens(prefix + suffix), lead + len(prefix)


class PromptTokenizer(HFTokenizer):
    """Each sentence inside the PromptBERT template: [CLS] prefix sentence suffix [SEP] + padding."""

    def __init__(self, name_or_path: str, max_length: int, cache_dir: str = "", template: str = ""):
        super().__init__(name_or_path, max_length, cache_dir)
        self.template = template

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        tok = self.tok
        prefix, suffix, full, _ = prompt_parts(tok, self.template)
        budget = self.max_length - len(full)
        if budget < 1:
            raise ValueError(f"model.text.max_seq_length={self.max_length} is too short for the PromptBERT "
                             f"template ({len(full)} tokens)")
        ids = np.full((len(texts), self.max_length), tok.pad_token_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, text in enumerate(texts):
            sentence = tok(text, add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
            seq = tok.build_inputs_with_special_tokens(prefix + sentence + suffix)
            ids[row, :len(seq)], mask[row, :len(seq)] = seq, 1
        return {"input_ids": ids, "attention_mask": mask}


class PromptBERTPooler:
    """[MASK] hidden state minus the template's own (denoised, Jiang et al. 2022, Sec. 4.2).

    The noise term runs the template alone (no sentence), with the positions after the sentence
    slot shifted by each row's sentence length, so it sees the same positions as the real input."""

    def __init__(self, template_ids: list[int], slot: int, mask_id: int, position_offset: int):
        self.template_ids, self.slot = template_ids, slot
        self.mask_pos = template_ids.index(mask_id)
        self.position_offset = position_offset

    def __call__(self, model: nn.Module, tokens: dict) -> torch.Tensor:
        """tokens: input_ids/attention_mask [B, L] -> [B, hidden]."""
        ids, attention = tokens["input_ids"], tokens["attention_mask"]
        hidden = model(input_ids=ids, attention_mask=attention).last_hidden_state  # [B, L, H]
        lengths = attention.sum(-1) - len(self.template_ids)  # sentence tokens per row
        rows = torch.arange(ids.shape[0], device=ids.device)
        shift = lengths if self.mask_pos >= self.slot else torch.zeros_like(lengths)
        feats = hidden[rows, self.mask_pos + shift]  # the template's [MASK], moved right by the sentence
        return feats - self.noise(model, lengths, max_length=ids.shape[1] - len(self.template_ids))

    def noise(self, model: nn.Module, lengths: torch.Tensor, max_length: int) -> torch.Tensor:
        """lengths long [B] (each in 0..max_length) -> the template's [MASK] state for each row [B, H].

        The template runs once for every possible sentence length 0..max_length (a static shape, so no
        host sync as `lengths.unique()` had) and each row picks its own on the device."""
        n, t = max_length + 1, len(self.template_ids)
        ids = torch.tensor(self.template_ids, device=lengths.device).expand(n, t)
        positions = torch.arange(t, device=lengths.device).expand(n, t).clone()
        positions[:, self.slot:] += torch.arange(n, device=lengths.device)[:, None]
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions + self.position_offset)
        return out.last_hidden_state[:, self.mask_pos][lengths.clamp(0, max_length)]


def _pool(pooler: str):
    def encode(model, tokens: dict) -> torch.Tensor:
        """tokens: input_ids/attention_mask long [B, L] -> [B, D]."""
        out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        if pooler == "logits":
            return out.logits
        if pooler == "cls":
            if getattr(out, "pooler_output", None) is None:
                raise ValueError("model.text.pooler 'cls' needs a model with a pooler; use 'cls_before_pooler'")
            return out.pooler_output
        if pooler == "cls_before_pooler":
            return out.last_hidden_state[:, 0]
        mask = tokens["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1e-9)

    return encode


def hf_unavailable(cfg: TowerConfig, option: str, err: Exception, kind: str = "HuggingFace"):
    """The error for a hub model (`kind`: how messages name it) that is neither local nor in the HF cache."""
    cache = cfg.cache_dir or os.environ.get("HF_HUB_CACHE") or "~/.cache/huggingface/hub"
    return unavailable(option, f"the {kind} model '{cfg.name}'",
                       f"the hub repo '{cfg.name}' (huggingface-cli download {cfg.name} --cache-dir {cache})",
                       f"the HuggingFace cache {cache} (set by {option}.cache_dir), or a local directory "
                       f"given as {option}.name", err, field="name")


def _load_model(cfg: TowerConfig, option: str) -> nn.Module:
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if cfg.pooler == "logits" else AutoModel
    if cfg.model_config:  # tiny random model: architecture from the inline config, tokenizer from `name`
        return auto.from_config(AutoConfig.for_model(**cfg.model_config))
    try:
        return auto.from_pretrained(resolve_model_path(cfg.name), cache_dir=cfg.cache_dir or None)
    except OSError as err:
        if Path(resolve_model_path(cfg.name)).is_dir():
            raise
        raise hf_unavailable(cfg, option, err) from err


def _tokenizer(cfg: TowerConfig) -> HFTokenizer:
    """The tokenizer of a huggingface tower (fixed-length; PromptBERT's puts each sentence in its template)."""
    name = resolve_model_path(cfg.name)  # an offline model package names its own directory
    if cfg.pooler != "PromptBERT":
        return HFTokenizer(name, cfg.max_seq_length, cfg.cache_dir)
    return PromptTokenizer(name, cfg.max_seq_length, cfg.cache_dir, cfg.prompt_template)


def _encoder(cfg: TowerConfig, model: nn.Module, option: str):
    """The encode function for `cfg.pooler`, and the tokenizer that goes with it."""
    if cfg.pooler != "PromptBERT":
        return _pool(cfg.pooler), _tokenizer(cfg)
    tok = _load_tokenizer(resolve_model_path(cfg.name), cfg.cache_dir)
    if tok.mask_token is None:
        raise ValueError(f"{option}.pooler PromptBERT needs a tokenizer with a mask token (BERT/RoBERTa style)")
    try:
        _, _, template_ids, slot = prompt_parts(tok, cfg.prompt_template)
    except ValueError as err:
        raise ValueError(f"{option}.prompt_template: {err}") from err
    padding_idx = getattr(getattr(model, "embeddings", None), "padding_idx", None)  # RoBERTa positions start after it
    offset = padding_idx + 1 if padding_idx is not None else 0
    pooler = PromptBERTPooler(template_ids, slot, tok.mask_token_id, offset)
    return pooler, _tokenizer(cfg)


def validate_huggingface(cfg: TowerConfig, option: str) -> None:
    """A model name, a well-formed PromptBERT template and adapter settings the adapter method
    takes (the pooler is checked against `poolers` at registration); nothing is loaded."""
    if not cfg.name:
        raise ValueError(f"{option}.name: a HuggingFace model id or local directory is required")
    if cfg.pooler == "PromptBERT" and cfg.prompt_template:
        try:
            check_template(cfg.prompt_template)
        except ValueError as err:
            raise ValueError(f"{option}.prompt_template: {err}") from err
    if cfg.adapter:
        adapter_config(cfg.adapter, cfg.adapter_config, option)


def describe_huggingface(cfg: TowerConfig, option: str = "model.text") -> TowerDescription:
    return TowerDescription(tokenizer=_tokenizer(cfg))


@register_tower("huggingface", "text", validate=validate_huggingface, describe=describe_huggingface,
                label="HuggingFace", adapters=True, poolers=POOLERS)
def huggingface_text(cfg: TowerConfig, option: str = "model.text") -> Tower:
    model = _load_model(cfg, option)
    if cfg.pooler != "cls" and isinstance(getattr(model, "pooler", None), nn.Module):
        model.pooler = None  # unused: no dead parameters for DDP and the optimiser
    encode, tokenizer = _encoder(cfg, model, option)
    added = add_adapter(model, cfg.adapter, cfg.adapter_config, option) if cfg.adapter else []
    if cfg.grad_checkpointing:
        enable_grad_checkpointing(model, option)
    width = model.config.num_labels if cfg.pooler == "logits" else model.config.hidden_size
    tower = Tower(model, int(width), encode, tokenizer=tokenizer)
    tower.added_params = [f"backbone.{n}" for n in added]
    return tower


def _sbert_encode(model: nn.Module, tokens: dict) -> torch.Tensor:
    """tokens: input_ids/attention_mask [B, L] -> the model's sentence embedding [B, D]."""
    features = {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
    return model(features)["sentence_embedding"]


def validate_sbert(cfg: TowerConfig, option: str) -> None:
    if not cfg.name:
        raise ValueError(f"{option}.name: a sentence-transformers model name or local directory is required")


def _sbert_tokenizer_path(name: str) -> str:
    """Where a sentence-transformers model's tokenizer lives: its Transformer module's folder
    (`modules.json`) in a local directory; a hub name is its own tokenizer's name."""
    modules = Path(name) / "modules.json"
    if not modules.is_file():
        return name
    for module in json.loads(modules.read_text()):
        if module.get("type", "").endswith(".Transformer"):
            return str(Path(name) / module["path"]) if module.get("path") else name
    return name


def sbert_max_length(cfg: TowerConfig, option: str = "model.text", own: int | None = None) -> int:
    """`max_seq_length`, or with 0 the model's own: `own` (a loaded SentenceTransformer's), else the
    `max_seq_length` of its `sentence_bert_config.json` (local directory or hub cache), what sentence-transformers
    truncates at (256 for all-MiniLM-L6-v2). Raises ValueError when 0 and the model has none."""
    if cfg.max_seq_length:
        return cfg.max_seq_length
    if own is None:
        from transformers.utils import cached_file

        config = cached_file(resolve_model_path(cfg.name), "sentence_bert_config.json", cache_dir=cfg.cache_dir or None,
                             _raise_exceptions_for_missing_entries=False)
        own = json.loads(Path(config).read_text()).get("max_seq_length") if config else None
    if not own:
        raise ValueError(f"{option}.max_seq_length=0 keeps the model's own, but {cfg.name} has no "
                         "sentence_bert_config.json max_seq_length: set a length")
    return int(own)


def describe_sbert(cfg: TowerConfig, option: str = "model.text") -> TowerDescription:
    name = _sbert_tokenizer_path(resolve_model_path(cfg.name))
    return TowerDescription(tokenizer=HFTokenizer(name, sbert_max_length(cfg, option), cfg.cache_dir))


@register_tower("sbert", "text", validate=validate_sbert, describe=describe_sbert)
def sbert_text(cfg: TowerConfig, option: str = "model.text") -> Tower:
    """A sentence-transformers model (its own pooling/normalisation) from a name or local directory."""
    from sentence_transformers import SentenceTransformer

    name = resolve_model_path(cfg.name)
    try:
        model = SentenceTransformer(name, device="cpu", cache_folder=cfg.cache_dir or None)
    except OSError as err:
        if Path(name).is_dir():
            raise
        raise hf_unavailable(cfg, option, err) from err
    model.max_seq_length = sbert_max_length(cfg, option, own=model.max_seq_length)
    if cfg.grad_checkpointing:
        enable_grad_checkpointing(model[0].auto_model, option)
    tokenizer = HFTokenizer(model.tokenizer.name_or_path, model.max_seq_length, cfg.cache_dir)
    width = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # renamed in ST 5
    return Tower(model, int(width()), _sbert_encode, tokenizer=tokenizer)
