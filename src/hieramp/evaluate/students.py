"""The student networks of the evaluation protocols.

`resnet18` is torchvision's; `resnet18-modified` is the same network with the small-image stem
(3x3 stride-1 convolution, no max-pool), as RDED uses below 224 px. ConvNet-D and ResNet-AP10 are
the dataset-distillation networks (Zhao et al., DC; Kim et al., IDC), not in torchvision:
instance norm is GroupNorm with one group per channel and affine parameters, as they define it.
"""
import torch
import torchvision
from torch import nn

from ..errors import UserError

CONVNET_WIDTH = 128
CONVNET_MIN_FEATURE = 4           # ConvNet depth: halve the image while the map stays >= 4 px


def instance_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(channels, channels, affine=True)


def resnet18(num_classes: int) -> nn.Module:
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


def resnet18_modified(num_classes: int) -> nn.Module:
    model = resnet18(num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def convnet_depth(image_size: int) -> int:
    """3 at 32 px, 4 at 64, 5 at 128 and 224, 6 at 256."""
    depth = 0
    while image_size // 2 >= CONVNET_MIN_FEATURE:
        image_size //= 2
        depth += 1
    return max(depth, 1)


class ConvNet(nn.Module):
    """ConvNet-D: D x (conv 3x3, instance norm, ReLU, 2x2 average pooling), then a linear layer."""

    def __init__(self, num_classes: int, image_size: int, width: int = CONVNET_WIDTH):
        super().__init__()
        layers, channels, size = [], 3, image_size
        for _ in range(convnet_depth(image_size)):
            layers += [nn.Conv2d(channels, width, 3, padding=1), instance_norm(width), nn.ReLU(inplace=True),
                       nn.AvgPool2d(2, 2)]
            channels, size = width, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x_B3HW):
        return self.classifier(self.features(x_B3HW).flatten(1))                 # (B, K)


class BlockAP(nn.Module):
    """ResNet basic block that downsamples by 2x2 average pooling instead of strided convolutions."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), instance_norm(cout),
                                  nn.ReLU(inplace=True), pool,
                                  nn.Conv2d(cout, cout, 3, padding=1, bias=False), instance_norm(cout))
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), pool, instance_norm(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetAP10(nn.Module):
    """ResNet-10 (one block per stage, widths 64-512) with average pooling and instance norm. Its stem
    is a stride-1 convolution followed by average pooling that suits the image size: 3x3 without
    pooling up to 64 px, 3x3 and 2x2 pooling up to 128 px, 7x7 and 4x4 pooling above (IDC's sizes)."""

    def __init__(self, num_classes: int, image_size: int):
        super().__init__()
        kernel, pool = (3, 1) if image_size <= 64 else (3, 2) if image_size <= 128 else (7, 4)
        stem = [nn.Conv2d(3, 64, kernel, padding=kernel // 2, bias=False), instance_norm(64), nn.ReLU(inplace=True)]
        if pool > 1:
            stem.append(nn.AvgPool2d(pool, pool))
        widths = (64, 128, 256, 512)
        blocks = [BlockAP(cin, cout, 1 if i == 0 else 2) for i, (cin, cout) in enumerate(zip((64,) + widths, widths))]
        self.features = nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):                      # He initialisation by fan-out, as IDC's ResNetAP
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x_B3HW):
        return self.fc(self.features(x_B3HW).flatten(1))                         # (B, K)


STUDENTS = {
    "resnet18": lambda k, size: resnet18(k),
    "resnet18-modified": lambda k, size: resnet18_modified(k),
    "convnet": lambda k, size: ConvNet(k, size),
    "resnet-ap10": lambda k, size: ResNetAP10(k, size),
}


def build_student(name: str, num_classes: int, image_size: int) -> nn.Module:
    if name not in STUDENTS:
        raise UserError(f"unknown student {name!r}: choose one of {', '.join(STUDENTS)}")
    return STUDENTS[name](num_classes, image_size)
