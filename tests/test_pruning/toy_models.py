"""Small hand-built models for the channel analysis and pruner tests."""
import torch
import torch.nn.functional as F
from torch import nn


class ToyNet(nn.Module):
    """add + concat + depthwise conv + squeeze-excite + flatten -> linear.

    Expected channel groups (see ``test_toy_groups``)::

        conv1  (8)  : conv1, conv2 (residual add), bn1, bn2; read by conv3,
                      conv4
        conv3  (10) : conv3 (4) ++ conv4 (6) concatenated, the depthwise
                      conv, SE's second conv (multiplied in), read by se1
                      and conv5
        se1    (3)  : the SE squeeze width
        conv5  (5)  : read by fc1 after a flatten (16 features per channel)
        fc1    (7)
        fc2    (2)  : the model output -> blocked
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 4, 1)
        self.conv4 = nn.Conv2d(8, 6, 1)
        self.dw = nn.Conv2d(10, 10, 3, padding=1, groups=10)
        self.se1 = nn.Conv2d(10, 3, 1)
        self.se2 = nn.Conv2d(3, 10, 1)
        self.conv5 = nn.Conv2d(10, 5, 1)
        self.fc1 = nn.Linear(5 * 4 * 4, 7)
        self.fc2 = nn.Linear(7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(self.conv1(x)))
        b = self.bn2(self.conv2(a)) + a
        c = torch.cat([self.conv3(b), self.conv4(b)], dim=1)
        d = self.dw(c)
        s = torch.sigmoid(
            self.se2(F.relu(self.se1(d.mean((2, 3), keepdim=True)))))
        d = d * s
        e = F.adaptive_avg_pool2d(self.conv5(d), 4).flatten(1)
        return self.fc2(F.relu(self.fc1(e)))


class BlockedNet(nn.Module):
    """``conv1``'s channels go through a softmax over channels (blocks
    them); ``conv2`` feeds a normal conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 1)
        self.conv2 = nn.Conv2d(6, 6, 1)
        self.conv3 = nn.Conv2d(6, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.conv1(x), dim=1)
        return self.conv3(F.relu(self.conv2(a))).mean((2, 3))


class SharedHeadNet(nn.Module):
    """A head conv shared by two pyramid levels (FPN style): the two level
    convs feeding it must be pruned together."""

    def __init__(self) -> None:
        super().__init__()
        self.level1 = nn.Conv2d(3, 8, 3, padding=1)
        self.level2 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Conv2d(8, 8, 3, padding=1)
        self.cls = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor):
        outs = []
        for feat in (self.level1(x), self.level2(x)):
            outs.append(self.cls(F.relu(self.head(feat))).mean((2, 3)))
        return torch.cat(outs, 1)


class ShuffleLNNet(nn.Module):
    """Channel shuffle, chunk, channels-last LayerNorm, GroupNorm and a
    layer-scale parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.branch = nn.Conv2d(4, 4, 1)
        self.gn = nn.GroupNorm(2, 8)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 16)
        self.proj = nn.Linear(16, 8)
        self.gamma = nn.Parameter(torch.rand(8) + 0.5)
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x1, x2 = x.chunk(2, dim=1)
        x = torch.cat([x1, self.branch(x2)], 1)
        b, c, h, w = x.shape
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)
        x = self.gn(x)
        y = self.ln(x.permute(0, 2, 3, 1))
        y = self.proj(F.gelu(self.fc(y))) * self.gamma
        x = x + y.permute(0, 3, 1, 2)
        return self.out(x).mean((2, 3))


def randomize_norms(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


def n_params(model: nn.Module) -> int:
    """Parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------ coverage-class models
class MixedConv(nn.Module):
    """A mixed-kernel conv (like timm's ``MixedConv2d``): the input is split
    in chunks of the sizes ``self.splits``, each chunk has its own kernel
    size, and the outputs are concatenated.

    Args:
        splits (list[int]): Input channels of every chunk.
        outs (list[int]): Output channels of every chunk.
    """

    def __init__(self, splits, outs) -> None:
        super().__init__()
        self.splits = list(splits)
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, 2 * k + 1, padding=k)
            for k, (cin, cout) in enumerate(zip(splits, outs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(x, self.splits, 1)
        return torch.cat([c(p) for c, p in zip(self.convs, parts)], 1)


class MixedConvNet(nn.Module):
    """stem -> mixed conv (uneven chunks) -> BN -> residual add -> mixed
    conv -> head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, padding=1)
        self.mix = MixedConv([5, 4, 3], [5, 4, 3])
        self.bn = nn.BatchNorm2d(12)
        self.mix2 = MixedConv([5, 4, 3], [4, 2, 2])
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = x + self.bn(self.mix(x))
        return self.head(F.relu(self.mix2(x)).mean((2, 3)))


class LayerScaleNet(nn.Module):
    """Learnable per-channel parameters used directly: a layer scale of
    shape ``(C, 1, 1)``, an ``nn.Parameter`` in ``torch.add`` and one in a
    ``+`` / ``torch.mul``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(8, 1, 1) + 0.5)
        self.beta = nn.Parameter(torch.rand(1, 8, 1, 1) - 0.5)
        self.conv2 = nn.Conv2d(8, 6, 1)
        self.scale = nn.Parameter(torch.rand(6) + 0.5)
        self.shift = nn.Parameter(torch.rand(6) - 0.5)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = x + torch.add(self.conv(x) * self.gamma, self.beta)
        y = F.relu(self.conv2(x)).mean((2, 3))
        y = torch.mul(y, self.scale) + self.shift
        return self.head(y)


class MHSA(nn.Module):
    """Multi-head self-attention over tokens ``(B, N, C)``.

    Args:
        dim (int): Token width.
        num_heads (int): Heads.
        head_dim (int): Channels per head.
        fused (bool): One ``qkv`` linear and ``scaled_dot_product_attention``
            (else ``q``/``k``/``v`` linears and an explicit softmax).
        baked (bool): Merge the heads back with the input width taken from
            ``x.shape`` (a width the pruner cannot rewrite).
    """

    def __init__(self, dim: int, num_heads: int, head_dim: int,
                 fused: bool = False, baked: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        inner = num_heads * head_dim
        if not baked:  # (the baked variant has no width attribute)
            self.inner_dim = inner
        self.fused = fused
        self.baked = baked
        if fused:
            self.qkv = nn.Linear(dim, 3 * inner)
        else:
            self.q = nn.Linear(dim, inner)
            self.k = nn.Linear(dim, inner)
            self.v = nn.Linear(dim, inner)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if self.fused:
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            q, k, v = (lin(x).view(b, n, self.num_heads,
                                   self.head_dim).transpose(1, 2)
                       for lin in (self.q, self.k, self.v))
            attn = (q @ k.transpose(-2, -1)) * self.head_dim**-0.5
            out = attn.softmax(dim=-1) @ v
        out = out.transpose(1, 2)
        out = out.reshape(b, n, c) if self.baked else out.reshape(
            b, n, self.inner_dim)
        return self.proj(out)


class TinyViT(nn.Module):
    """Patch embedding + class token + position embedding + one
    pre-norm block (attention with layer scale, MLP) + head.

    Args:
        **attn_kwargs: Options of :class:`MHSA`.
    """

    def __init__(self, **attn_kwargs) -> None:
        super().__init__()
        dim = 16
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, dim))
        self.norm1 = nn.LayerNorm(dim)
        attn_kwargs.setdefault('head_dim', 6)
        self.attn = MHSA(dim, num_heads=4, **attn_kwargs)
        self.ls1 = nn.Parameter(torch.rand(dim) + 0.5)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 24)
        self.fc2 = nn.Linear(24, dim)
        self.head = nn.Linear(dim, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1)
        x = x + self.pos_embed
        x = x + self.attn(self.norm1(x)) * self.ls1
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return self.head(x[:, 0])


class SelectiveKernelNet(nn.Module):
    """A selective-kernel block: two kernel paths stacked, re-weighted by a
    softmax over the paths and summed."""

    def __init__(self) -> None:
        super().__init__()
        c = 8
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.paths = nn.ModuleList(
            nn.Conv2d(c, c, 2 * k + 3, padding=k + 1) for k in range(2))
        self.fc_reduce = nn.Conv2d(c, 4, 1)
        self.fc_select = nn.Conv2d(4, 2 * c, 1)
        self.head = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        paths = torch.stack([p(x) for p in self.paths], dim=1)
        a = paths.sum(1).mean((2, 3), keepdim=True)
        a = self.fc_select(F.relu(self.fc_reduce(a)))
        b, c = a.shape[:2]
        a = a.view(b, 2, c // 2, 1, 1).softmax(dim=1)
        x = F.relu((paths * a).sum(1))
        return self.head(x.mean((2, 3)))
