"""Training the bundled digits model, and scoring distilled digits sets with student CNNs.

`train_digits(out)` runs the whole recipe (held-out split, VQVAE, VAR, class-token fine-tune)
and writes the files `load_model` reads; `evaluate_distilled(dir)` trains students on a
distilled set and tests them on the held-out real digits. scikit-learn is needed only to train.
"""
from .evaluate import EvalResult, evaluate_distilled, evaluate_images, read_image_folder
from .recipe import Recipe, train_digits

__all__ = ["EvalResult", "Recipe", "evaluate_distilled", "evaluate_images", "read_image_folder", "train_digits"]
