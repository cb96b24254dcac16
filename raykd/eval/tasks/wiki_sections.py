"""Wiki Sections triplets (Dor et al., 2018, "Learning Thematic Similarity Metric Using Triplet Networks"):
accuracy of ``cos(anchor, positive) > cos(anchor, negative)`` with the text tower as sentence encoder."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raykd.eval.features import extract_text_features
from raykd.eval.metrics import prefixed
from raykd.eval.tasks._registry import register_task

TASK = "wiki_sections"


@register_task(TASK, data_kind="triplets", modality="text", aliases=("wiki",))
def wiki_sections(model: Any, anchors: Sequence[str], positives: Sequence[str], negatives: Sequence[str],
                  dataset_name: str, batch_size: int = 256, project: bool = True) -> dict[str, float]:
    """Returns ``wiki_sections/<dataset>/accuracy`` (ties count as wrong)."""
    a, p, n = (extract_text_features(model, texts, batch_size, project=project, normalize=True)
               for texts in (anchors, positives, negatives))
    correct = (a * p).sum(dim=1) > (a * n).sum(dim=1)
    return prefixed(TASK, dataset_name, {"accuracy": correct.float().mean().item()})
