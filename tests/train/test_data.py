import numpy as np
import torch

from hieramp.train.data import HELDOUT_FRACTION, NUM_CLASSES, load_digits_split, load_heldout, to_rgb


def test_split_is_stratified_disjoint_and_fixed(digits_split):
    train, heldout = digits_split
    assert len(train) + len(heldout) == 1797
    for c in range(NUM_CLASSES):
        n_c = (train.labels == c).sum() + (heldout.labels == c).sum()
        assert (heldout.labels == c).sum() == round(HELDOUT_FRACTION * n_c)
    flat_train = {img.tobytes() + bytes([lab]) for img, lab in zip(train.images, train.labels)}
    overlap = sum(img.tobytes() + bytes([lab]) in flat_train for img, lab in zip(heldout.images, heldout.labels))
    assert overlap == 0
    again_train, again_heldout = load_digits_split()
    np.testing.assert_array_equal(again_heldout.images, heldout.images)
    np.testing.assert_array_equal(again_train.labels, train.labels)


def test_bundled_heldout_is_the_split(digits_split):
    _, heldout = digits_split
    bundled = load_heldout()
    np.testing.assert_array_equal(bundled.images, heldout.images)
    np.testing.assert_array_equal(bundled.labels, heldout.labels)


def test_to_rgb_upsamples_grey_to_three_equal_channels_in_range():
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    images[1] = 16
    images[0, 3:5, 3:5] = 16
    rgb = to_rgb(images)
    assert rgb.shape == (2, 3, 16, 16) and rgb.dtype == torch.float32
    assert torch.equal(rgb[:, 0], rgb[:, 2])
    assert rgb[0].min() == -1 and rgb[1].min() == 1
    assert rgb[0, 0, 7, 7] == 1 and rgb[0, 0, 0, 0] == -1
