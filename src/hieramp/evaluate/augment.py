"""Per-batch training augmentation of the protocols, on uint8 (B, 3, S, S) batches.

Every random draw comes from torch's global generator, which the training loop seeds per
(student, epoch): a resumed run then draws exactly what the uninterrupted run drew.
"""
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# PCA of ImageNet pixel colours (AlexNet's "lighting" noise), RGB in [0, 1]
LIGHTING_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
LIGHTING_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]])


def _strips(length: int, factor: int, order) -> torch.Tensor:
    edges = [k * length // factor for k in range(factor + 1)]
    return torch.cat([torch.arange(edges[k], edges[k + 1]) for k in order.tolist()])


def shuffle_patches(x_B3HW, factor: int):
    """Each image cut into factor x factor patches whose rows and columns of patches are shuffled
    (RDED's patch shuffling: its distilled images are mosaics of factor x factor patches)."""
    B, _, H, W = x_B3HW.shape
    out = torch.empty_like(x_B3HW)
    for b in range(B):
        rows = _strips(H, factor, torch.randperm(factor))
        cols = _strips(W, factor, torch.randperm(factor))
        out[b] = x_B3HW[b][:, rows][:, :, cols]
    return out


def random_resized_crop(x_B3HW, scale: tuple):
    """A crop of its own per image (area share in `scale`, aspect 3/4-4/3), resized back to the size."""
    size = list(x_B3HW.shape[-2:])
    crops = []
    for image in x_B3HW:
        i, j, h, w = T.RandomResizedCrop.get_params(image, scale=list(scale), ratio=[3 / 4, 4 / 3])
        crops.append(TF.resized_crop(image, i, j, h, w, size, antialias=True))
    return torch.stack(crops)


def random_flip(x_B3HW):
    flip = torch.rand(len(x_B3HW)) < 0.5
    x_B3HW = x_B3HW.clone()
    x_B3HW[flip] = x_B3HW[flip].flip(-1)
    return x_B3HW


def color_jitter(x_B3HW, strength: float):
    """Brightness, contrast and saturation each scaled by a factor in [1 - s, 1 + s], per image."""
    jitter = T.ColorJitter(brightness=strength, contrast=strength, saturation=strength)
    return torch.stack([jitter(image) for image in x_B3HW])


def lighting(x_B3HW, alpha_std: float):
    """AlexNet lighting noise: each image shifted along the colour principal components by
    N(0, alpha_std) times their eigenvalues."""
    alpha_B3 = torch.randn(len(x_B3HW), 3) * alpha_std
    rgb_B3 = (alpha_B3 * LIGHTING_EIGVAL) @ LIGHTING_EIGVEC.T
    return x_B3HW + rgb_B3[:, :, None, None]


def normalize(x_B3HW):
    return TF.normalize(x_B3HW, IMAGENET_MEAN, IMAGENET_STD)


def to_unit(x_B3HW_uint8):
    return x_B3HW_uint8.float() / 255


def cutmix(x_B3HW, alpha: float = 1.0):
    """CutMix: one box of a random partner pasted into each image, box area 1 - lam with
    lam ~ Beta(alpha, alpha). Returns (mixed, partner index per image, lam of the pasted area)."""
    B, _, H, W = x_B3HW.shape
    lam = torch.distributions.Beta(alpha, alpha).sample().item()
    cut = (1 - lam) ** 0.5
    h, w = int(H * cut), int(W * cut)
    cy, cx = torch.randint(H, ()).item(), torch.randint(W, ()).item()
    y0, y1 = max(cy - h // 2, 0), min(cy + h // 2, H)
    x0, x1 = max(cx - w // 2, 0), min(cx + w // 2, W)
    partner = torch.randperm(B)
    mixed = x_B3HW.clone()
    mixed[:, :, y0:y1, x0:x1] = x_B3HW[partner, :, y0:y1, x0:x1]
    return mixed, partner, 1 - (y1 - y0) * (x1 - x0) / (H * W)
