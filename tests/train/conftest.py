import pytest

from hieramp.train.data import load_digits_split, to_rgb


@pytest.fixture(scope="session")
def digits_split():
    return load_digits_split()


@pytest.fixture(scope="session")
def real_student(digits_split):
    """A student trained on the real training digits: the judge of generated digits."""
    from hieramp.train.student import train_student
    train, _ = digits_split
    return train_student(to_rgb(train.images), train.labels, seed=0)
