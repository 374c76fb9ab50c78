"""Small building blocks of the zoo models, each with its analytical FLOPs per item.

FLOPs count multiply-adds as 2 FLOPs (``2 * in * out`` per linear layer and item); element-wise
activations and gates are not counted. Shapes: ``n`` items, ``T`` history steps, ``d`` embedding dim,
``H`` hidden size.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class MLP(nn.Module):
    """Stack of ``Linear`` layers with ReLU between them.

    ``[n, in_features] -> [n, layers[-1]]``. ``last_activation=False`` leaves the last layer linear
    (logits); with ``True`` every layer is followed by ReLU (DLRM's bottom MLP, towers).
    """

    def __init__(self, in_features: int, layers: Sequence[int], last_activation: bool = True) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = in_features
        for i, out in enumerate(layers):
            mods.append(nn.Linear(width, out))
            if last_activation or i < len(layers) - 1:
                mods.append(nn.ReLU())
            width = out
        self.net = nn.Sequential(*mods)
        self.in_features = in_features
        self.out_features = width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def flops_per_item(self) -> int:
        return sum(2 * m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))


class DotInteraction(nn.Module):
    """DLRM's pairwise dot interaction (TorchRec ``InteractionArch``).

    ``dense [n, d]``, ``sparse [n, F, d]`` -> ``[n, d + (F + 1) * F / 2]``.
    """

    def __init__(self, num_sparse_features: int, dim: int) -> None:
        super().__init__()
        from torchrec.models.dlrm import InteractionArch

        self.arch = InteractionArch(num_sparse_features=num_sparse_features)
        self.num_sparse_features = num_sparse_features
        self.dim = dim

    @property
    def out_features(self) -> int:
        f = self.num_sparse_features
        return self.dim + (f + 1) * f // 2

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        return self.arch(dense, sparse)

    def flops_per_item(self) -> int:
        f = self.num_sparse_features
        return 2 * self.dim * (f + 1) * (f + 1)  # batched (F+1)x(F+1) Gram matrix per item


class LocalActivationUnit(nn.Module):
    """DIN's local activation unit: attention pooling of a behaviour history against a candidate.

    ``history [n, T, d]``, ``candidate [n, d]`` -> ``[n, d]`` with
    ``weight_t = MLP([e_t, e_c, e_t - e_c, e_t * e_c])`` (hidden ``layers``, 1 output, no softmax, as
    in the DIN paper) and ``out = sum_t weight_t * e_t``.
    """

    def __init__(self, dim: int, layers: Sequence[int]) -> None:
        super().__init__()
        self.mlp = MLP(4 * dim, [*layers, 1], last_activation=False)
        self.dim = dim

    def forward(self, history: Tensor, candidate: Tensor) -> Tensor:
        cand = candidate.unsqueeze(1).expand_as(history)
        feats = torch.cat([history, cand, history - cand, history * cand], dim=-1)  # [n, T, 4d]
        weights = self.mlp(feats)                                                   # [n, T, 1]
        return (weights * history).sum(dim=1)

    def flops_per_item(self, steps: int) -> int:
        return steps * (self.mlp.flops_per_item() + 2 * self.dim)


class AUGRU(nn.Module):
    """GRU with attentional update gate (DIEN's interest evolution layer).

    ``x [n, T, in]``, ``attention [n, T]`` -> final hidden state ``[n, H]``; the update gate of step
    ``t`` is multiplied by ``attention[:, t]``. Gate layout follows ``nn.GRU`` (reset, update, new).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.zeros(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden_size))
        if not self.weight_ih.is_meta:
            nn.init.xavier_uniform_(self.weight_ih)
            nn.init.xavier_uniform_(self.weight_hh)

    def forward(self, x: Tensor, attention: Tensor) -> Tensor:
        n, steps, _ = x.shape
        gx = torch.nn.functional.linear(x, self.weight_ih, self.bias_ih)  # [n, T, 3H] in one GEMM
        h = x.new_zeros(n, self.hidden_size)
        for t in range(steps):
            gh = torch.nn.functional.linear(h, self.weight_hh, self.bias_hh)
            xr, xz, xn = gx[:, t].chunk(3, dim=1)
            hr, hz, hn = gh.chunk(3, dim=1)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz) * attention[:, t:t + 1]
            cand = torch.tanh(xn + r * hn)
            h = (1 - z) * h + z * cand
        return h

    def flops_per_item(self, steps: int) -> int:
        return steps * 2 * 3 * self.hidden_size * (self.input_size + self.hidden_size)


class InterestExtractor(nn.Module):
    """DIEN's interest extractor (GRU) + candidate attention + interest evolution (AUGRU).

    ``history [n, T, d]``, ``candidate [n, d]`` -> ``[n, H]``:
    ``h = GRU(history)``, ``a_t = softmax_t(h_t . W e_c)``, ``out = AUGRU(h, a)``.
    """

    def __init__(self, dim: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, hidden_size, batch_first=True)
        self.att = nn.Linear(dim, hidden_size, bias=False)  # W e_c
        self.augru = AUGRU(hidden_size, hidden_size)
        self.dim, self.hidden_size = dim, hidden_size

    def forward(self, history: Tensor, candidate: Tensor) -> Tensor:
        states, _ = self.gru(history)                                   # [n, T, H]
        query = self.att(candidate).unsqueeze(2)                        # [n, H, 1]
        attention = torch.softmax(torch.bmm(states, query).squeeze(2), dim=1)  # [n, T]
        return self.augru(states, attention)

    def flops_per_item(self, steps: int) -> int:
        gru = steps * 2 * 3 * self.hidden_size * (self.dim + self.hidden_size)
        att = 2 * self.dim * self.hidden_size + steps * 2 * self.hidden_size
        return gru + att + self.augru.flops_per_item(steps)
