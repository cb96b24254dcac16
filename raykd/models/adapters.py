"""Parameter-efficient tuning of HuggingFace text towers through the `adapters` library (AdapterHub).

`model.text.adapter` picks a method; its settings default to the original codebase's and any
field of the method's `adapters` config class can be overridden in `model.text.adapter_config`:

    bottleneck     BnConfig(mh_adapter, output_adapter, reduction_factor=16, non_linearity=relu)  (Houlsby et al. 2019)
    lang_adapter   SeqBnInvConfig(): bottleneck + invertible adapter                             (Pfeiffer et al. 2020, MAD-X)
    prefix_tuning  PrefixTuningConfig(flat=False, prefix_length=30)                              (Li & Liang 2021)
    compacter      CompacterConfig()                                                             (Karimi Mahabadi et al. 2021)
    lora           LoRAConfig(r=8, alpha=16)                                                     (Hu et al. 2022)
    ia3            IA3Config()                                                                   (Liu et al. 2022)
    mam            MAMConfig(): prefix tuning + parallel adapter                                 (He et al. 2022)
    unipelt        UniPELTConfig(): gated LoRA + prefix tuning + adapter                         (Mao et al. 2022)

After `add_adapter` only the adapter's parameters train (`train_adapter` freezes the rest).
"""
from __future__ import annotations

import dataclasses

from torch import nn

ADAPTER_NAME = "raykd"

METHODS: dict[str, tuple[str, dict]] = {
    "bottleneck": ("BnConfig", {"mh_adapter": True, "output_adapter": True, "reduction_factor": 16,
                                "non_linearity": "relu"}),
    "lang_adapter": ("SeqBnInvConfig", {}),
    "prefix_tuning": ("PrefixTuningConfig", {"flat": False, "prefix_length": 30}),
    "compacter": ("CompacterConfig", {}),
    "lora": ("LoRAConfig", {"r": 8, "alpha": 16}),
    "ia3": ("IA3Config", {}),
    "mam": ("MAMConfig", {}),
    "unipelt": ("UniPELTConfig", {}),
}


def list_adapters() -> list[str]:
    return sorted(METHODS)


def adapter_config(method: str, overrides: dict, option: str = "model.text"):
    """The `adapters` config object for `method` with `overrides`; bad names/fields raise ValueError."""
    import adapters

    if method not in METHODS:
        raise ValueError(f"{option}.adapter: unknown adapter method '{method}'; valid: {list_adapters()}")
    class_name, defaults = METHODS[method]
    cls = getattr(adapters, class_name)
    try:
        return cls(**{**defaults, **(overrides or {})})
    except TypeError as err:
        fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        raise ValueError(f"{option}.adapter_config: {err}; {class_name} fields: {fields}") from err


def add_adapter(model: nn.Module, method: str, overrides: dict, option: str = "model.text") -> list[str]:
    """Add and activate the adapter on a HuggingFace model; freeze the rest.

    Returns the names (relative to `model`) of the parameters that train: the adapter's."""
    import adapters

    config = adapter_config(method, overrides, option)
    adapters.init(model)
    model.add_adapter(ADAPTER_NAME, config=config)
    model.train_adapter(ADAPTER_NAME)
    return [n for n, p in model.named_parameters() if p.requires_grad]
