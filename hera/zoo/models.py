"""The six model kinds of the zoo as small TorchRec modules (one class per kind).

Every model takes ``dense: Tensor[n, dense_in]`` float32 and a ``KeyedJaggedTensor`` whose keys are the
spec's table names (built by :func:`hera.zoo.inputs.make_inputs`) and returns float32 scores
``Tensor[n, spec.n_outputs]`` in ``[0, 1]``. Pooled tables live in one
``torchrec.EmbeddingBagCollection`` (sum pooling), DIN/DIEN behaviour histories in one
``torchrec.EmbeddingCollection`` (one vector per id).

Embedding collections are created on ``emb_device`` (``meta`` when weights are assigned later from a
memory-mapped file, see :mod:`hera.zoo.load`); dense layers are created on the CPU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchrec import (EmbeddingBagCollection, EmbeddingBagConfig, EmbeddingCollection, EmbeddingConfig,
                      KeyedJaggedTensor, PoolingType)

from hera.zoo.modules import MLP, DotInteraction, InterestExtractor, LocalActivationUnit
from hera.zoo.spec import ModelSpec


class RecModel(nn.Module):
    """Base: the embedding collections of a spec and helpers to read them.

    ``ebc`` holds the pooled tables (spec order), ``ec`` the sequence tables (or ``None``).
    """

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        super().__init__()
        device = torch.device(emb_device)
        self.model_id = spec.model_id
        self.n_outputs = spec.n_outputs
        pooled, seq = spec.pooled_tables, spec.sequence_tables
        self.pooled_names = [t.name for t in pooled]
        self.pooled_dims = [t.dim for t in pooled]
        self.sequence_names = [t.name for t in seq]
        self.ebc = EmbeddingBagCollection(
            tables=[EmbeddingBagConfig(name=t.name, embedding_dim=t.dim, num_embeddings=t.rows,
                                       feature_names=[t.name], pooling=PoolingType.SUM) for t in pooled],
            device=device,
        )
        self.ec = EmbeddingCollection(
            tables=[EmbeddingConfig(name=t.name, embedding_dim=t.dim, num_embeddings=t.rows,
                                    feature_names=[t.name]) for t in seq],
            device=device,
        ) if seq else None

    def pooled(self, sparse: KeyedJaggedTensor) -> Tensor:
        """Sum-pooled embeddings of every pooled table, concatenated: ``[n, sum(dims)]``."""
        return self.ebc(sparse).values()

    def sequence(self, sparse: KeyedJaggedTensor, n: int) -> Tensor:
        """Behaviour history ``[n, T, d]``: one sequence table of T ids, or T step tables of one id."""
        out = self.ec(sparse)
        if len(self.sequence_names) == 1:
            values = out[self.sequence_names[0]].values()
            return values.view(n, -1, values.shape[-1])
        return torch.stack([out[name].values() for name in self.sequence_names], dim=1)

    def flops_per_item(self) -> int:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class DLRM(RecModel):
    """DLRM: bottom MLP on dense features, ``cat`` (or ``dot``) with pooled embeddings, top MLP, sigmoid.

    ``dense [n, dense_in]`` -> bottom ``[n, b]``; pooled ``[n, T * d]``; ``cat`` -> ``[n, b + T * d]``,
    ``dot`` -> ``[n, b + (T + 1) * T / 2]``; top MLP -> ``[n, 1]``.
    """

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        super().__init__(spec, emb_device)
        self.bottom = MLP(spec.dense_in, spec.bottom_mlp, last_activation=True)
        self.interaction = spec.interaction
        n_tables = len(spec.pooled_tables)
        if spec.interaction == "dot":
            self.dot = DotInteraction(n_tables, spec.bottom_mlp[-1])
            top_in = self.dot.out_features
        else:
            self.dot = None
            top_in = spec.bottom_mlp[-1] + sum(self.pooled_dims)
        self.top = MLP(top_in, spec.top_mlp, last_activation=False)

    def forward(self, dense: Tensor, sparse: KeyedJaggedTensor) -> Tensor:
        x = self.bottom(dense)
        emb = self.pooled(sparse)
        if self.dot is not None:
            z = self.dot(x, emb.view(x.shape[0], len(self.pooled_names), -1))
        else:
            z = torch.cat([x, emb], dim=1)
        return torch.sigmoid(self.top(z))

    def flops_per_item(self) -> int:
        inter = self.dot.flops_per_item() if self.dot is not None else 0
        return self.bottom.flops_per_item() + inter + self.top.flops_per_item()


class NCF(RecModel):
    """Neural collaborative filtering (DeepRecSys' NCF): GMF + MLP tower, fused, sigmoid.

    Tables (spec order): GMF user, GMF item, MLP user, MLP item, all of dim ``d``.
    GMF ``e_u * e_i`` ``[n, d]``; tower ``MLP([m_u, m_i])`` ``[n, top[-3]]``; fusion
    ``ReLU(Linear([gmf, tower]))`` ``[n, top[-2]]``; output ``sigmoid(Linear)`` ``[n, 1]``.
    """

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        super().__init__(spec, emb_device)
        d = spec.tables[0].dim
        self.dim = d
        self.tower = MLP(2 * d, spec.top_mlp[:-2], last_activation=True)
        self.fusion = MLP(d + self.tower.out_features, [spec.top_mlp[-2]], last_activation=True)
        self.out = MLP(spec.top_mlp[-2], [spec.top_mlp[-1]], last_activation=False)

    def forward(self, dense: Tensor, sparse: KeyedJaggedTensor) -> Tensor:
        emb = self.pooled(sparse)
        d = self.dim
        gmf = emb[:, 0:d] * emb[:, d:2 * d]
        tower = self.tower(emb[:, 2 * d:4 * d])
        return torch.sigmoid(self.out(self.fusion(torch.cat([gmf, tower], dim=1))))

    def flops_per_item(self) -> int:
        layers = (self.tower, self.fusion, self.out)
        return self.dim + sum(m.flops_per_item() for m in layers)


class WideAndDeep(RecModel):
    """Wide & Deep: ``x = [dense, pooled]``; ``sigmoid(deep_MLP(x) + wide_linear(x))`` -> ``[n, 1]``."""

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        super().__init__(spec, emb_device)
        width = spec.dense_in + sum(self.pooled_dims)
        self.deep = MLP(width, spec.top_mlp, last_activation=False)
        self.wide = MLP(width, [1], last_activation=False)

    def forward(self, dense: Tensor, sparse: KeyedJaggedTensor) -> Tensor:
        x = torch.cat([dense, self.pooled(sparse)], dim=1)
        return torch.sigmoid(self.deep(x) + self.wide(x))

    def flops_per_item(self) -> int:
        return self.deep.flops_per_item() + self.wide.flops_per_item()


class MultiTaskWideAndDeep(RecModel):
    """Multi-task Wide & Deep: shared MLP over ``[dense, pooled]``, one head per task.

    ``[n, dense_in + T * d]`` -> shared ``[n, top[-1]]`` -> ``tasks`` heads ``[n, 1]`` -> sigmoid
    ``[n, tasks]``.
    """

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        super().__init__(spec, emb_device)
        self.shared = MLP(spec.dense_in + sum(self.pooled_dims), spec.top_mlp, last_activation=True)
        self.heads = nn.ModuleList(
            MLP(self.shared.out_features, spec.extra["task_mlp"], last_activation=False)
            for _ in range(spec.extra["tasks"])
        )

    def forward(self, dense: Tensor, sparse: KeyedJaggedTensor) -> Tensor:
        shared = self.shared(torch.cat([dense, self.pooled(sparse)], dim=1))
        return torch.sigmoid(torch.cat([head(shared) for head in self.heads], dim=1))

    def flops_per_item(self) -> int:
        return self.shared.flops_per_item() + sum(h.flops_per_item() for h in self.heads)


class _HistoryModel(RecModel):
    """Shared parts of DIN and DIEN: candidate lookup, top MLP, 2-way softmax -> ``[n, 1]``."""

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str, interest_width: int) -> None:
        super().__init__(spec, emb_device)
        offsets = [0]
        for d in self.pooled_dims:
            offsets.append(offsets[-1] + d)
        i = self.pooled_names.index("candidate")
        self.cand_slice = (offsets[i], offsets[i + 1])
        self.history_steps = spec.extra["history"]
        top_in = sum(self.pooled_dims) + interest_width + spec.dense_in
        self.top = MLP(top_in, spec.top_mlp, last_activation=False)

    def interest(self, history: Tensor, candidate: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, dense: Tensor, sparse: KeyedJaggedTensor) -> Tensor:
        n = dense.shape[0]
        pooled = self.pooled(sparse)
        candidate = pooled[:, self.cand_slice[0]:self.cand_slice[1]]
        interest = self.interest(self.sequence(sparse, n), candidate)
        logits = self.top(torch.cat([pooled, interest, dense], dim=1))
        return torch.softmax(logits, dim=1)[:, 1:2]


class DIN(_HistoryModel):
    """Deep Interest Network: local activation unit over the behaviour history, top MLP 200-80-2.

    history ``[n, T, d]`` + candidate ``[n, d]`` -> interest ``[n, d]``; top input
    ``[pooled (3d), interest (d), dense]`` -> ``[n, 2]`` -> softmax class 1 ``[n, 1]``.
    """

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        d = spec.sequence_tables[0].dim
        super().__init__(spec, emb_device, interest_width=d)
        self.attention = LocalActivationUnit(d, spec.extra["attention_mlp"])

    def interest(self, history: Tensor, candidate: Tensor) -> Tensor:
        return self.attention(history, candidate)

    def flops_per_item(self) -> int:
        return self.attention.flops_per_item(self.history_steps) + self.top.flops_per_item()


class DIEN(_HistoryModel):
    """Deep Interest Evolution Network: GRU + attention + AUGRU over the behaviour steps.

    history ``[n, T, d]`` + candidate ``[n, d]`` -> final AUGRU state ``[n, H]``; top input
    ``[pooled (3d), state (H), dense]`` -> ``[n, 2]`` -> softmax class 1 ``[n, 1]``.
    """

    def __init__(self, spec: ModelSpec, emb_device: torch.device | str = "cpu") -> None:
        hidden = spec.extra["gru_hidden"]
        super().__init__(spec, emb_device, interest_width=hidden)
        self.extractor = InterestExtractor(spec.sequence_tables[0].dim, hidden)

    def interest(self, history: Tensor, candidate: Tensor) -> Tensor:
        return self.extractor(history, candidate)

    def flops_per_item(self) -> int:
        return self.extractor.flops_per_item(self.history_steps) + self.top.flops_per_item()


MODEL_CLASSES: dict[str, type[RecModel]] = {
    "dlrm": DLRM, "ncf": NCF, "wnd": WideAndDeep, "mtwnd": MultiTaskWideAndDeep, "din": DIN, "dien": DIEN,
}


def build_module(spec: ModelSpec, emb_device: torch.device | str = "cpu") -> RecModel:
    """The module of a spec's kind, in eval mode, without gradients."""
    model = MODEL_CLASSES[spec.kind](spec, emb_device)
    model.requires_grad_(False)
    return model.eval()


def embedding_weight_names(model: nn.Module) -> list[str]:
    """State-dict keys of the tables: ``ebc.embedding_bags.<t>.weight`` and ``ec.embeddings.<t>.weight``."""
    return [k for k in model.state_dict() if k.startswith(("ebc.embedding_bags.", "ec.embeddings."))]
