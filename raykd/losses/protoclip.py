"""ProtoCLIP: InfoNCE plus prototype-level discrimination against k-means text prototypes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from raykd import distributed as D
from raykd.losses._functional import soft_cross_entropy
from raykd.losses._state import resize_buffers_from_state, state_dtype
from raykd.losses.base import DistillLoss
from raykd.losses.infonce import InfoNCE
from raykd.losses.registry import register_loss


def spherical_kmeans(x: Tensor, k: int, iters: int = 20, seed: int = 0, chunk_size: int = 16384) -> Tensor:
    """Centroids [k, D] (unit norm) of k-means on the unit sphere (cosine similarity) of the rows of ``x``
    on every worker (``x`` is this worker's share), identical on every worker.

    No worker gathers the others' rows and no [N, k] matrix is formed: each worker scores ``chunk_size`` of
    its rows at a time against the centroids and only the per-centroid sums and counts ([k, D] + [k]) are
    all-reduced, so memory is O(chunk_size x k + k x D) (a 200k x 20000 similarity matrix would be 16 GB).
    Initialised with ``k`` distinct rows of the concatenation of all workers' rows (rank order) chosen by a
    seeded permutation, so the result equals the single-process k-means of that concatenation; an empty
    cluster keeps its previous centroid.
    """
    x = F.normalize(x, dim=-1)
    sizes = D.all_gather_no_grad(torch.tensor([x.shape[0]], device=x.device)).tolist()
    total, offset = sum(sizes), sum(sizes[:D.rank()])
    if total < k:
        raise ValueError(f"spherical k-means needs at least k={k} rows, got {total}")
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(total, generator=g)[:k]
    mine = (chosen >= offset) & (chosen < offset + x.shape[0])
    centers = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    centers[mine.to(x.device)] = x[(chosen[mine] - offset).to(x.device)]
    centers = D.all_reduce_sum(centers)  # each chosen row comes from exactly one worker
    for _ in range(iters):
        sums = torch.zeros_like(centers)
        counts = torch.zeros(k, dtype=x.dtype, device=x.device)
        for chunk in x.split(chunk_size):
            assign = (chunk @ centers.T).argmax(dim=1)
            sums.index_add_(0, assign, chunk)
            counts += torch.bincount(assign, minlength=k).to(x.dtype)
        sums, counts = D.all_reduce_sum(sums), D.all_reduce_sum(counts).unsqueeze(1)
        centers = torch.where(counts > 0, F.normalize(sums, dim=-1), centers)
    return centers


@register_loss("ProtoCLIP")
class ProtoCLIP(DistillLoss):
    """InfoNCE plus student->prototype and teacher->prototype cross-entropy.

    Chen, Chen, Zhu, Song, Wang, Liu, Wang, Yang, "ProtoCLIP: Prototypical Contrastive Language
    Image Pretraining", IEEE TNNLS 2023 (arXiv:2206.10996).
    Prototypes [k, D] are spherical k-means centroids of the teacher (text) features of an
    episode, set by ``update_prototypes(features)``, which the trainer calls once per episode.
    Each pair's label is the prototype nearest its teacher feature; its target is that label
    one-hot or, with ``soft_targets``, ``softmax(P[label] @ P.T / target_temperature)`` (the
    prototype's similarities to all prototypes, as in the authors' ``ProtoLoss``). Both the
    student (image) and the teacher (text) rows are scored against the prototypes with a
    learnable scale (log-space, init log(1/0.07), gradient averaged over workers, clamped at
    100). ``loss = infonce_weight * InfoNCE + student_proto_weight * CE(student -> P) +
    teacher_proto_weight * CE(teacher -> P)``; the default weights 0.5 are the authors'
    ``L_proto = (L_img + L_text) / 2``, and their default k is 20000 (episodes of ~200k pairs).
    Until ``update_prototypes`` is first called, the loss is InfoNCE only (a k-means of a single
    batch would give meaningless prototypes; the scale gets a zero gradient meanwhile). Prototype terms use this worker's rows (the mean
    over workers is the global value). Needs equal dims and ``logit_scale``.
    """

    paper = "Chen et al. 2023, ProtoCLIP (TNNLS, arXiv:2206.10996)"
    needs_logit_scale = True
    needs_gather = True
    needs_prototypes = True

    def __init__(
        self,
        n_prototypes: int = 20000,
        kmeans_iters: int = 20,
        soft_targets: bool = False,
        target_temperature: float = 0.01,
        init_proto_scale: float = math.log(1 / 0.07),
        infonce_weight: float = 1.0,
        student_proto_weight: float = 0.5,
        teacher_proto_weight: float = 0.5,
        local_loss: bool = True,
        gather_with_grad: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.n_prototypes, self.kmeans_iters, self.seed = n_prototypes, kmeans_iters, seed
        self.soft_targets, self.target_temperature = soft_targets, target_temperature
        self.weights = (infonce_weight, student_proto_weight, teacher_proto_weight)
        self.infonce = InfoNCE(local_loss=local_loss, gather_with_grad=gather_with_grad)
        self.proto_scale = nn.Parameter(torch.tensor(float(init_proto_scale)))
        self.register_buffer("prototypes", torch.empty(0))
        self.register_buffer("has_prototypes", torch.tensor(False))
        self._has_prototypes = False  # the buffer's value on the host: reading the buffer every step would sync

    @torch.no_grad()
    def update_prototypes(self, features: Tensor) -> None:
        """Re-cluster: k-means of the episode's teacher features, this worker's rows [N_rank, D]; every
        worker calls it together and gets the same prototypes (see ``spherical_kmeans``)."""
        total = int(D.all_reduce_sum(torch.tensor(float(features.shape[0]), device=features.device)))
        if total < self.n_prototypes:
            raise ValueError(
                f"loss 'ProtoCLIP' needs at least n_prototypes={self.n_prototypes} features "
                f"to cluster, got {total}"
            )
        feats = features.detach().to(state_dtype(features))
        self.prototypes = spherical_kmeans(feats, self.n_prototypes, self.kmeans_iters, self.seed)
        self.has_prototypes.fill_(True)
        self._has_prototypes = True

    def _targets(self, t: Tensor, protos: Tensor) -> Tensor:
        label = (t @ protos.T).argmax(dim=-1)
        if self.soft_targets:
            return F.softmax(protos[label] @ protos.T / self.target_temperature, dim=-1)
        return F.one_hot(label, protos.shape[0]).to(t.dtype)

    def forward(self, teacher, student, *, logit_scale=None, labels=None):
        self._require(logit_scale, "logit_scale")
        self._same_dim(teacher, student)
        w_nce, w_student, w_teacher = self.weights
        loss = w_nce * self.infonce(teacher, student, logit_scale=logit_scale)
        if not self._has_prototypes:  # zero-gradient use keeps DDP from flagging an unused parameter
            return loss + 0.0 * self.proto_scale
        s, t = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
        protos = self.prototypes.to(s)
        targets = self._targets(t.detach(), protos)
        scale = D.sync_grad(self.proto_scale).exp().clamp(max=100)
        loss = loss + w_student * soft_cross_entropy(scale * s @ protos.T, targets)
        return loss + w_teacher * soft_cross_entropy(scale * t @ protos.T, targets)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        resize_buffers_from_state(self, ["prototypes"], state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._has_prototypes = bool(self.has_prototypes)
