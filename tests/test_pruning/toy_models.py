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
